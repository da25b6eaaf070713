"""SMSBuddy adapter: form POST for one message, JSON root+nodes for a batch.

Document: /work/shared/providers/smsbuddy.txt. Endpoints, relative to the
base URL `https://thesmsbuddy.com/api/v1` the document gives:

    POST {base_url}/sms/send            form: key, type, sender, to, message, ...
    POST {base_url}/sms/send/json       JSON: {"root": {...}, "nodes": [{to, message, refid}]}
    POST {balance_url}                  form: key

The document's curl examples drop the `v1` (`https://thesmsbuddy.com/api/sms/send`)
while its base URL and the headings of the send endpoints carry it; for those
we follow the base URL. The balance check is the one endpoint whose heading
and curl example agree on no `v1`: `https://thesmsbuddy.com/api/sms/balance/check`,
so that is where we ask (`SMSBuddySettings.balance_endpoint`, a setting).

Every answer is a JSON object whose "status" is a code as text ("200" on
success) and whose "message" says why. We read the code from the body and fall
back to the HTTP status only when the body is not JSON, so an error answered
with HTTP 200 is still classified by its code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import httpx

from smsdispatch.config.settings import SMSBuddySettings
from smsdispatch.providers.base import Adapter, json_object, retry_after_seconds
from smsdispatch.providers.errors import ConfigurationError, VendorProtocolError
from smsdispatch.providers.reports import ReportTable, lookup, our_reference, text
from smsdispatch.vocabulary.delivery import DeliveryReport, IncomingReport, MalformedReport
from smsdispatch.vocabulary.message import OutboundMessage
from smsdispatch.vocabulary.outcomes import CodeTable, Outcome, OutcomeKind, Rule, clip_raw
from smsdispatch.vocabulary.status import MessageStatus

# Ours, not the vendor's: a message of a successful answer that the answer does
# not list. The vendor lists what it accepted ("N numbers accepted for
# delivery."), so a message it left out was rejected (invalid number).
NOT_ACCEPTED = "not-accepted"

# The document's "Error Codes" table. "200 Success Response" is not here: a
# "200" body is parsed for its accepted records, never classified.
CODES: CodeTable = {
    "400": Rule(OutcomeKind.PERMANENT, "Incomplete request - Any one of mandatory field missing"),
    # Our configured `type` (settings.service_type) is wrong: every message
    # would fail the same way, so pause the vendor instead of failing them.
    "422": Rule(OutcomeKind.ACCOUNT, "Invalid Service Type"),
    "401": Rule(OutcomeKind.ACCOUNT, "Invalid API Key"),
    # The sender is per message (a batch holds one sender), so only the
    # messages of that sender fail; it is ours, not the recipient's, so a
    # routed message goes to another vendor of its route instead.
    "412": Rule(OutcomeKind.VENDOR_REFUSED, "Invalid Sender ID"),
    # Quiet hours. Not a failure: the message may go from 10AM. The pipeline
    # holds it until the window the catalog declares (quiet_hours) opens,
    # without using retry budget.
    "451": Rule(
        OutcomeKind.OUTSIDE_HOURS,
        "Sorry, this service is allowed only between 10AM & 9PM - Monday to Sunday. "
        "Request you to kindly try scheduling the campaign during the said timings. "
        "Thank you.",
    ),
    "406": Rule(OutcomeKind.PERMANENT, "No Valid Numbers"),
    # The document does not say whether this is lasting; a careful integrator
    # treats a service outage as transient and backs off.
    "416": Rule(OutcomeKind.RETRY, "Service Not Available"),
    "409": Rule(OutcomeKind.ACCOUNT, "Insufficient Balance"),
    "429": Rule(
        OutcomeKind.RATE_LIMITED,
        "Too many requests received. Your threshold value is 1000 SMS/minute. "
        "Please contact support.",
    ),
    "500": Rule(
        OutcomeKind.RETRY, "There is an issue at our end. Please submit your request again."
    ),
    NOT_ACCEPTED: Rule(
        OutcomeKind.PERMANENT,
        "not accepted by the vendor: missing from its list of accepted numbers",
    ),
}

SUCCESS = "200"

# Delivery statuses. The document shows only "AWAITING-DLR" (a send answer's
# status, no report yet); the rest are the SMPP receipt words Indian routes
# report, which is what a careful integrator codes against until the vendor
# says otherwise. An unknown word is refused (4xx) and kept, not guessed at.
REPORT_STATUSES: ReportTable = {
    "AWAITING-DLR": MessageStatus.ACCEPTED,
    "SUBMITTED": MessageStatus.ACCEPTED,
    "DELIVRD": MessageStatus.DELIVERED,
    "UNDELIV": MessageStatus.UNDELIVERED,
    "EXPIRED": MessageStatus.EXPIRED,
    "REJECTD": MessageStatus.FAILED,
    # Blocked by India's Do-Not-Disturb registry: it will never be delivered.
    "DND": MessageStatus.FAILED,
    "FAILED": MessageStatus.FAILED,
}


class SMSBuddyAdapter(Adapter[SMSBuddySettings]):
    name = "smsbuddy"
    codes = CODES
    # POST /sms/send/json: one root (key, type, sender) and one node per message.
    supports_batch = True

    # -- requests ------------------------------------------------------------

    def build_request(self, message: OutboundMessage) -> httpx.Request:
        form = {
            **self._common(message.sender),
            "to": message.recipient_digits,
            "message": message.text,
            # The vendor echoes `custom` in its delivery report.
            "custom": message.reference,
        }
        return self.client.build_request("POST", self._url("sms/send"), data=form)

    def build_batch_request(self, messages: Sequence[OutboundMessage]) -> httpx.Request:
        root = {**self._common(messages[0].sender), "flash": "0"}
        nodes = [
            {"to": m.recipient_digits, "message": m.text, "refid": m.reference} for m in messages
        ]
        return self.client.build_request(
            "POST", self._url("sms/send/json"), json={"root": root, "nodes": nodes}
        )

    def batch_key(self, message: OutboundMessage) -> object:
        """The root of a JSON request holds one sender for all its nodes."""
        return message.sender

    def _common(self, sender: str) -> dict[str, str]:
        """Fields every send carries: credential, service type, sender, reports."""
        fields = {"key": self._key(), "type": self.settings.service_type, "sender": sender}
        if self.settings.template_id:
            fields["template_id"] = self.settings.template_id
        if self.report_url is not None:
            fields["dlr_url"] = self.report_url
        return fields

    def _key(self) -> str:
        key = self.settings.key.get_secret_value()
        if not key:
            raise ConfigurationError("smsbuddy: no API key configured (SMSBUDDY__KEY)")
        return key

    def _url(self, path: str) -> str:
        return f"{self.settings.base_url.rstrip('/')}/{path}"

    # -- answers -------------------------------------------------------------

    def parse_response(self, response: httpx.Response, message: OutboundMessage) -> Outcome:
        records = self._records(response)
        if isinstance(records, Outcome):
            return records
        if not records:
            return Outcome.from_code(NOT_ACCEPTED, self.codes, raw=response.text)
        # One number per request, so the answer's one record is ours.
        return _accepted(records[0], response)

    def parse_batch_response(
        self, response: httpx.Response, messages: Sequence[OutboundMessage]
    ) -> list[Outcome]:
        records = self._records(response)
        if isinstance(records, Outcome):
            return [records] * len(messages)
        ours = {m.reference for m in messages}
        by_ref: dict[str, dict[str, Any]] = {}
        for record in records:
            # The document's example echoes refid "2" as the number 2.
            refid = record.get("refid")
            if not isinstance(refid, str | int) or isinstance(refid, bool) or refid == "":
                # Without our refid a record cannot be matched to its message:
                # the batch was taken but we cannot say which id is whose.
                raise VendorProtocolError("accepted record without a refid")
            ref = str(refid)
            if ref not in ours or ref in by_ref:
                raise VendorProtocolError("accepted record with a refid we did not send once")
            by_ref[ref] = record
        return [
            _accepted(by_ref[m.reference], response)
            if m.reference in by_ref
            else Outcome.from_code(NOT_ACCEPTED, self.codes, raw=response.text)
            for m in messages
        ]

    def _records(self, response: httpx.Response) -> list[dict[str, Any]] | Outcome:
        """The accepted records of a success answer, or the outcome of an error.

        A body that is not JSON raises `VendorProtocolError`: the base then
        classifies by HTTP status (or calls a 2xx ambiguous).
        """
        body = json_object(response)
        code, reason = _code(body)
        if code == SUCCESS:
            if not response.is_success:
                return self.classify_http(response)
            data = body.get("data")
            if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
                raise VendorProtocolError('"status": "200" without a list of records in "data"')
            return data
        if code in self.codes:
            return Outcome.from_code(
                code,
                self.codes,
                reason=reason,
                raw=response.text,
                retry_after=retry_after_seconds(response),
            )
        # A code the document's table lacks: the HTTP status decides where it
        # says more than "refused"; otherwise retried, never failed at once.
        return self.classify_undocumented(response, code, reason)

    # -- delivery reports and the status query ------------------------------

    supports_status_query: ClassVar[bool] = True

    @classmethod
    def parse_report(cls, incoming: IncomingReport) -> DeliveryReport:
        """A request to our `dlr_url`. The document says only that the URL
        receives "the status of the message" and the `custom` parameter; we
        read `id` (the vendor's id from the send answer), `status` and `custom`
        (our reference, sent with single messages) from the query of a GET or
        the form of a POST alike.
        """
        fields = incoming.fields()
        word = fields.get("status")
        tracking_id = fields.get("id") or None
        reference = our_reference(fields.get("custom"))
        if not word:
            raise MalformedReport("smsbuddy: a report needs a status")
        return DeliveryReport(
            lookup(REPORT_STATUSES, word, cls.name),
            word,
            tracking_id=tracking_id,
            reference=reference,
            raw=incoming.raw,
        )

    async def query_status(self, tracking_id: str) -> DeliveryReport | Outcome:
        """`GET {base_url}/sms/send?key=...&id=<id>`: "You can retrieve the
        results of the message you sent using the GET method ... containing the
        reference id for the message you sent." We read "reference id" as the
        `id` the send answer gave (our refid is not unique to the vendor), and
        the answer as the send answer's shape: a "200" body whose `data` holds
        the message's record with its current `status`.
        """
        request = self.client.build_request(
            "GET", self._url("sms/send"), params={"key": self._key(), "id": tracking_id}
        )
        try:
            response = await self.client.send(request)
            records = self._records(response)
        except httpx.TransportError as exc:
            return Outcome(
                OutcomeKind.RETRY,
                code=type(exc).__name__,
                reason=f"status query failed: {type(exc).__name__}",
            )
        except VendorProtocolError as exc:
            return Outcome(OutcomeKind.RETRY, code="unreadable", reason=f"status query: {exc}")
        if isinstance(records, Outcome):
            return records
        record = next((r for r in records if text(r.get("id")) == tracking_id), None)
        word = text(record.get("status")) if record else None
        if word is None or word not in REPORT_STATUSES:
            return Outcome(
                OutcomeKind.RETRY,
                code="unmapped",
                reason=f"status query: no usable status ({word or 'no record'})",
                raw=clip_raw(response.text),
            )
        return DeliveryReport(
            REPORT_STATUSES[word], word, tracking_id=tracking_id, raw=clip_raw(response.text) or ""
        )

    # -- account -------------------------------------------------------------

    async def balance(self) -> dict[str, int]:
        """The account's balance per service, e.g. {"trans": 100, "promo": 0, ...}.

        Raises `ConfigurationError` when the vendor refuses our key (401: an
        operator must fix it), `VendorProtocolError` for any other error code
        or an answer not in the documented shape; network errors propagate as
        httpx raised them.
        """
        request = self.client.build_request(
            "POST", self.settings.balance_endpoint(), data={"key": self._key()}
        )
        response = await self.client.send(request)
        try:
            body = json_object(response)
        except VendorProtocolError:
            body = {"status": str(response.status_code)}
        code, reason = _code(body)
        if code == "401":
            raise ConfigurationError(f"smsbuddy: balance check refused: {code} {reason or ''}")
        if code != SUCCESS or not response.is_success:
            raise VendorProtocolError(f"smsbuddy: balance check answered {code} {reason or ''}")
        data = body.get("data")
        if not isinstance(data, dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in data.values()
        ):
            raise VendorProtocolError('smsbuddy: balance "data" is not a mapping of numbers')
        return {str(k): v for k, v in data.items()}


def _code(body: dict[str, Any]) -> tuple[str, str | None]:
    status = body.get("status")
    if not isinstance(status, str | int) or isinstance(status, bool):
        raise VendorProtocolError('answer without a "status" code')
    message = body.get("message")
    return str(status), message if isinstance(message, str) else None


def _accepted(record: dict[str, Any], response: httpx.Response) -> Outcome:
    tracking_id = record.get("id")
    if not isinstance(tracking_id, str) or not tracking_id:
        raise VendorProtocolError('accepted record without an "id"')
    status = record.get("status")
    return Outcome.accepted(
        tracking_id, vendor_status=status if isinstance(status, str) else None, raw=response.text
    )
