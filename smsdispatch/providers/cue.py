"""Cue: one message per `GET {base_url}/json?action=message_send&...`.

Credentials travel in the query string, as Cue's document shows them;
`CueQueryAuth` adds them at send time, the one place they go on a request,
so httpx's INFO request log would print them: keep the `httpx` logger quiet.
Every answer is HTTP 200 with `{"status": n, "message": "...", "details": "..."}`; `status`
1 and 2 are acceptances and `details` is then Cue's tracking id.

Our message's reference (random, unique across installations: DESIGN
invariant 3) is sent as `client_reference`, and Cue rejects a repeated one
with -7 "Duplicate Client Reference". On a resend that means "already
accepted", so resending after an ambiguous read timeout is safe; on a first
send it cannot be ours (see `parse_response`).

Delivery reports: Cue requests `report_url` on the status changes chosen by
`report_mask` (bits below) and replaces a literal `%d` in that URL with the
status bit. We append `message_id=<our reference>&status=%d` to the account's
report URL, so a report names our message even when it arrives before the
send was recorded or when the send was accepted as a duplicate (no tracking
id). The parameter keeps its old name; its value is the reference, not the
row id, which another installation on the same account has too.
"""

from __future__ import annotations

from collections.abc import Generator
from enum import IntFlag
from functools import cached_property
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
from pydantic import SecretStr

from smsdispatch.config.settings import CueSettings
from smsdispatch.providers.base import Adapter, json_object
from smsdispatch.providers.errors import ConfigurationError, VendorProtocolError
from smsdispatch.providers.reports import ReportTable, lookup, our_reference
from smsdispatch.vocabulary.delivery import DeliveryReport, IncomingReport, MalformedReport
from smsdispatch.vocabulary.message import OutboundMessage
from smsdispatch.vocabulary.outcomes import CodeTable, Outcome, OutcomeKind, Rule, clip_raw
from smsdispatch.vocabulary.status import MessageStatus

K = OutcomeKind

# Cue's "Response Codes" table, in the document's order.
CODES: CodeTable = {
    "1": Rule(K.ACCEPTED, "Sent"),
    "2": Rule(K.ACCEPTED, "Queued"),
    "-1": Rule(K.RETRY, "System Error: an unexpected error occurred on the server"),
    "-2": Rule(K.ACCOUNT, "Authentication Failed: the username or password is incorrect"),
    "-3": Rule(K.ACCOUNT, "No Credit: the account has insufficient credit"),
    "-4": Rule(K.PERMANENT, "Invalid Destination: the recipient's phone number is invalid"),
    # Our sender, not the recipient: another vendor of the route may carry it.
    "-5": Rule(
        K.VENDOR_REFUSED, "Invalid Sender ID: 'from' is invalid or not allowed for the account"
    ),
    # "A required parameter is missing or an invalid value was provided": every
    # parameter but the message's own (to, from, text, client_reference) is
    # fixed by this module, so an invalid one is this message's (e.g. empty text).
    "-6": Rule(K.PERMANENT, "Invalid Parameter: a parameter is missing or has an invalid value"),
    # `parse_response` decides: accepted when an earlier send of ours may have
    # reached Cue unanswered, else sent again under a new reference.
    "-7": Rule(K.RETRY, "Duplicate Client Reference: the client_reference was already used"),
    "-8": Rule(K.PERMANENT, "Message Too Long: the text exceeds the maximum allowed length"),
    "-9": Rule(K.PERMANENT, "Blacklisted Destination: the recipient's number is on a blacklist"),
    "-10": Rule(K.ACCOUNT, "Account Suspended"),
    # -11 and -13..-16 are caused by the shape of our request or the account's
    # setup, not by one message: every message would fail alike, so pause the
    # vendor with the reason (fail nothing) until an operator fixes it.
    "-11": Rule(K.ACCOUNT, "Feature Not Enabled for the account"),
    # As -6: the required parameters we fix are always sent, so a missing one
    # is this message's (an empty text or number).
    "-12": Rule(K.PERMANENT, "Missing Required Parameter"),
    "-13": Rule(K.ACCOUNT, "Invalid Action: the 'action' parameter is invalid"),
    "-14": Rule(K.ACCOUNT, "Invalid Character Set: the 'charset' parameter is invalid"),
    "-15": Rule(K.ACCOUNT, "Invalid Report Mask: the 'report_mask' parameter is invalid"),
    "-16": Rule(K.ACCOUNT, "Invalid Report URL: the 'report_url' parameter is invalid"),
}

ACCEPTED_STATUSES = frozenset({1, 2})
DUPLICATE_REFERENCE = -7
ALREADY_ACCEPTED = "Duplicate Client Reference on a resend: an earlier attempt was accepted"
SPENT_REFERENCE = (
    "Duplicate Client Reference, though no send of ours can have been accepted: "
    "sent again under a new reference"
)


class ReportStatus(IntFlag):
    """Cue's delivery-report statuses: the bits of `report_mask`."""

    DELIVERED = 1
    UNDELIVERED = 2
    QUEUED_AT_NETWORK = 4
    SENT_TO_NETWORK = 8
    FAILED_AT_NETWORK = 16


# Cue's "delivery status codes" (one bit per report) -> our status. Queued at
# and sent to network are still in flight. "Failed at network" is a refusal
# by the network (FAILED), told apart from "Undelivered" as Cue does.
REPORT_STATUSES: ReportTable = {
    str(int(ReportStatus.DELIVERED)): MessageStatus.DELIVERED,
    str(int(ReportStatus.UNDELIVERED)): MessageStatus.UNDELIVERED,
    str(int(ReportStatus.QUEUED_AT_NETWORK)): MessageStatus.ACCEPTED,
    str(int(ReportStatus.SENT_TO_NETWORK)): MessageStatus.ACCEPTED,
    str(int(ReportStatus.FAILED_AT_NETWORK)): MessageStatus.FAILED,
}

# The final statuses only: delivered, undelivered, failed at network (= 19,
# the document's own example and its default).
REPORT_MASK = ReportStatus.DELIVERED | ReportStatus.UNDELIVERED | ReportStatus.FAILED_AT_NETWORK
# The query parameters we add to the account's report URL; Cue replaces `%d`.
REPORT_ID_PARAM = "message_id"
REPORT_STATUS_PARAM = "status"


class CueQueryAuth(httpx.Auth):
    """Cue's username and password, as query parameters of every request."""

    def __init__(self, username: SecretStr, password: SecretStr) -> None:
        self._params = {
            "username": username.get_secret_value(),
            "password": password.get_secret_value(),
        }

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.url = request.url.copy_merge_params(self._params)
        yield request


def report_url_for(report_url: str, reference: str) -> str:
    """The account's report URL, naming our message and asking for the status.

    Built as text, not through httpx.URL, so `%d` stays literal for Cue to
    replace (httpx would encode it as `%25d`).
    """
    parts = urlsplit(report_url)
    ours = f"{REPORT_ID_PARAM}={quote(reference, safe='')}&{REPORT_STATUS_PARAM}=%d"
    query = f"{parts.query}&{ours}" if parts.query else ours
    return urlunsplit(parts._replace(query=query))


class CueAdapter(Adapter[CueSettings]):
    name = "cue"
    codes = CODES
    deduplicates_reference = True

    @cached_property
    def _auth(self) -> CueQueryAuth:
        return CueQueryAuth(self.settings.username, self.settings.password)

    def auth(self) -> httpx.Auth:
        return self._auth

    def build_request(self, message: OutboundMessage) -> httpx.Request:
        if not (
            self.settings.username.get_secret_value() and self.settings.password.get_secret_value()
        ):
            # Cue might answer an empty credential with -12, which would fail
            # every message instead of pausing: an operator must set them.
            raise ConfigurationError("cue: CUE__USERNAME and CUE__PASSWORD must be set")
        params = {
            "action": "message_send",
            "to": message.recipient_digits,
            "from": message.sender,
            "text": message.text,
            "client_reference": message.reference,
        }
        # charset and auto_detect_encoding are left to Cue's defaults (GSM 7
        # bit, auto-detect "yes"), which send a non-GSM text as Unicode.
        if self.report_url is not None:
            params["report_url"] = report_url_for(self.report_url, message.reference)
            params["report_mask"] = str(int(REPORT_MASK))
        url = self.settings.base_url.rstrip("/") + "/json"
        return self.client.build_request("GET", url, params=params)

    @classmethod
    def parse_report(cls, incoming: IncomingReport) -> DeliveryReport:
        """Cue requests our report URL with `message_id` (our reference, added
        when sending) and `status` (the bit Cue put in place of `%d`).

        The document says Cue "will call this URL" without naming the method:
        we take the query of a GET and the form of a POST alike.
        """
        fields = incoming.fields()
        reference = our_reference(fields.get(REPORT_ID_PARAM))
        word = fields.get(REPORT_STATUS_PARAM)
        if reference is None or not word:
            raise MalformedReport("cue: a report needs message_id (our reference) and status")
        return DeliveryReport(
            lookup(REPORT_STATUSES, word, cls.name),
            word,
            reference=reference,
            raw=incoming.raw,
        )

    def parse_response(self, response: httpx.Response, message: OutboundMessage) -> Outcome:
        body = json_object(response)
        status = _status(body.get("status"))
        words, details = _text(body.get("message")), _text(body.get("details"))
        raw = response.text
        if status in ACCEPTED_STATUSES:
            if not response.is_success:
                # An acceptance on an HTTP error is not the documented shape:
                # the base classifies the HTTP status instead.
                raise VendorProtocolError(f"status {status} on HTTP {response.status_code}")
            return Outcome(
                OutcomeKind.ACCEPTED,
                tracking_id=details,
                code=str(status),
                vendor_status=words,
                raw=clip_raw(raw),
            )
        if status == DUPLICATE_REFERENCE and message.reference_in_doubt:
            # Our references are 122-128 random bits drawn per message, so no
            # other message, installation or database sends this one, and an
            # earlier send of this very message reached Cue unanswered (a read
            # timeout, a worker killed before it recorded the answer): -7 is
            # Cue remembering that send, which it took.
            # The document does not say `details` carries the first send's
            # tracking id, so none is recorded; the report names our reference.
            return Outcome(
                OutcomeKind.ACCEPTED,
                code=str(status),
                vendor_status="duplicate",
                reason=ALREADY_ACCEPTED,
                raw=clip_raw(raw),
            )
        if status == DUPLICATE_REFERENCE:
            # Every earlier send of ours had a definite answer, none of them an
            # acceptance: Cue kept the reference of a send it refused (its
            # document says only "already been used"), or someone else used it.
            # Either way nothing was sent, and this reference never will be:
            # send again under a new one.
            return Outcome(
                OutcomeKind.RETRY,
                code=str(status),
                reason=SPENT_REFERENCE,
                raw=clip_raw(raw),
                renew_reference=True,
            )
        reason = ": ".join(part for part in (words, details) if part) or None
        return Outcome.from_code(str(status), CODES, reason=reason, raw=raw)


def _status(value: object) -> int:
    """The answer's integer status; "1" is read as 1, anything else is no status."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    raise VendorProtocolError("no integer 'status' in the answer")


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
