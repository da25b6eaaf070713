"""Skycore: one JSON POST per message, `"action": "sendsms"`, key in `x-api-key`.

Request (document "Request: JSON"): POST to API_ENDPOINT_URL itself, the whole
URL being `SkycoreSettings.base_url` (`SKYCORE__BASE_URL`). The document names
neither a host nor a path, so the setting has no default: without it nothing
is sent and the producer refuses Skycore messages.

    {"action": "sendsms", "message-text": ..., "to": ..., "from": ...,
     "from-mask": ...}                       # from-mask only for a brand sender

Answer: {"status": "Success", "tracking-id", "status-details", ...} or
{"status": "Failure", "error-code", "error-info", ...}; the document spells the
status once as "failure", so it is compared case-insensitively.

Interpretations of the document (see also the comments in `CODES`):

- Numbers go in international format without '+' or '00'
  (`recipient_digits`). The document's request examples show "+10000000001"
  while its failure example echoes "10000000001"; we follow the no-'+' form.
- "from" must be a short code, toll-free or 10DLC number; "from-mask" is the
  brand ("Not supported in the USA"). A sender that is all digits goes as
  "from" (a leading '+' is dropped, as for recipients); any other sender goes
  as "from-mask" with `default_sender` as "from". Skycore cuts a mask at 11
  characters; our producer already limits senders, so we send it as it is.
- No "campaign-ref" (only needed with "Enforce Campaign Check", off for our
  accounts) and no "click-tracking" (optional, off by default: links as is).
- Skycore has no reference field of ours, so it cannot deduplicate a resend:
  a read timeout after the request left is AMBIGUOUS.
- Delivery reports are postbacks matched by tracking-id; the request has no
  field to ask for them (`report_url` is not sent): the postback URL is set
  on the account (its API settings) to our Skycore report URL.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import httpx
from pydantic import SecretStr

from smsdispatch.config.settings import SkycoreSettings
from smsdispatch.providers.base import Adapter, json_object, retry_after_seconds
from smsdispatch.providers.errors import ConfigurationError, VendorProtocolError
from smsdispatch.providers.reports import ReportTable, json_report, lookup, text
from smsdispatch.vocabulary.delivery import DeliveryReport, IncomingReport, MalformedReport
from smsdispatch.vocabulary.message import OutboundMessage
from smsdispatch.vocabulary.outcomes import CodeTable, Outcome, OutcomeKind, Rule
from smsdispatch.vocabulary.status import MessageStatus

CODES: CodeTable = {
    # The one code the document lists (its failure example).
    # Our sender for this account, not the recipient's fault.
    "E111": Rule(OutcomeKind.VENDOR_REFUSED, "Invalid Sender."),
    # Not in the document: HTTP-level answers, carried as "error-code" by our
    # simulator and classed as a careful integrator would. The document names
    # no auth error, so a rejected x-api-key (401/403) pauses the account.
    "400": Rule(OutcomeKind.PERMANENT, "request rejected as malformed (HTTP 400)"),
    "401": Rule(OutcomeKind.ACCOUNT, "x-api-key rejected (HTTP 401)"),
    "403": Rule(OutcomeKind.ACCOUNT, "account not allowed to send (HTTP 403)"),
    "429": Rule(OutcomeKind.RATE_LIMITED, "throttled (HTTP 429)"),
    "500": Rule(OutcomeKind.RETRY, "Skycore server error (HTTP 500)"),
    "502": Rule(OutcomeKind.RETRY, "bad gateway in front of Skycore (HTTP 502)"),
    "503": Rule(OutcomeKind.RETRY, "Skycore unavailable (HTTP 503)"),
    "504": Rule(OutcomeKind.RETRY, "gateway timeout in front of Skycore (HTTP 504)"),
}

SUCCESS = "success"
FAILURE = "failure"

# Postback statuses. The document only says postbacks are matched by
# tracking-id (and, per DESIGN, retried every 5 minutes up to 5 times until
# answered 200 within 10 s); it gives neither their body nor their words.
# Our reading: a JSON POST in the send API's style, {"tracking-id", "status",
# "error-code"?, "error-info"?}, with these words (compared case-insensitively).
REPORT_STATUSES: ReportTable = {
    "queued": MessageStatus.ACCEPTED,
    "sent": MessageStatus.ACCEPTED,
    "delivered": MessageStatus.DELIVERED,
    "undelivered": MessageStatus.UNDELIVERED,
    "expired": MessageStatus.EXPIRED,
    "rejected": MessageStatus.FAILED,
    "failed": MessageStatus.FAILED,
}


class SkycoreKeyAuth(httpx.Auth):
    """The account key in the `x-api-key` header (case-sensitive)."""

    def __init__(self, api_key: SecretStr) -> None:
        self._api_key = api_key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["x-api-key"] = self._api_key.get_secret_value()
        yield request


class SkycoreAdapter(Adapter[SkycoreSettings]):
    name = "skycore"
    codes = CODES
    deduplicates_reference = False  # no reference field of ours in the API

    def auth(self) -> httpx.Auth:
        if not self.settings.api_key.get_secret_value():
            raise ConfigurationError("skycore: api_key is not set")
        return SkycoreKeyAuth(self.settings.api_key)

    def build_request(self, message: OutboundMessage) -> httpx.Request:
        payload: dict[str, Any] = {
            "action": "sendsms",
            "message-text": message.text,
            "to": message.recipient_digits,
            **self.sender_fields(message.sender),
        }
        return self.client.build_request("POST", self.settings.base_url, json=payload)

    def sender_fields(self, sender: str) -> dict[str, str]:
        """A number goes as "from"; a brand as "from-mask" from our default number."""
        number = sender.removeprefix("+")
        if not sender or (number.isascii() and number.isdigit()):
            return {"from": number or self.settings.default_sender}
        return {"from": self.settings.default_sender, "from-mask": sender}

    @classmethod
    def parse_report(cls, incoming: IncomingReport) -> DeliveryReport:
        """A postback (see REPORT_STATUSES for the form we read)."""
        body = json_report(incoming, cls.name, "postback")
        tracking_id, word = text(body.get("tracking-id")), text(body.get("status"))
        if tracking_id is None or word is None:
            raise MalformedReport("skycore: a postback needs tracking-id and status")
        return DeliveryReport(
            lookup(REPORT_STATUSES, word.casefold(), cls.name),
            word,
            tracking_id=tracking_id,
            error_code=text(body.get("error-code")),
            error_reason=text(body.get("error-info")),
            raw=incoming.raw,
        )

    def parse_response(self, response: httpx.Response, message: OutboundMessage) -> Outcome:
        body = json_object(response)
        raw = response.text
        status = body.get("status")
        status = status.casefold() if isinstance(status, str) else None
        if status == SUCCESS:
            tracking_id = _text(body.get("tracking-id"))
            # "Success" says it was taken: without a tracking-id postbacks
            # cannot be matched, but resending would send it twice.
            return Outcome.accepted(
                tracking_id, vendor_status=_text(body.get("status-details")), raw=raw
            )
        if status != FAILURE:
            raise VendorProtocolError(f"status is neither Success nor Failure: {status!r}")
        code = _text(body.get("error-code"))
        info = _text(body.get("error-info"))
        if code is None or code not in CODES:
            # The document lists one code (E111): any other, on an HTTP 200
            # above all, may be an account problem it does not describe (no
            # balance, a key turned off, "Enforce Campaign Check" turned on).
            # Retried, and the vendor paused if it repeats across messages.
            return self.classify_undocumented(
                response, code, info or "Failure without an error-code"
            )
        return Outcome.from_code(
            code, CODES, reason=info, raw=raw, retry_after=retry_after_seconds(response)
        )


def _text(value: object) -> str | None:
    """A JSON string or number as text; None for anything else or empty."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value) or None
