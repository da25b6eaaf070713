"""Messangi (the "Raven" Outbound SMS API): a Bearer API key, JSON both ways.

    POST {base_url}/v2/messages          one message
        -> {"meta": {...}, "data": {"id", "status", ...}}
    POST {batch_url}                     one text, many recipients
        -> {"meta": {...}, "data": {"ids": [{"id", "mobile"}], "invalidNumber": [...],
                                    "status", ...}}

`base_url` is `<host>/raven` (see smsdispatch.config.settings). The document gives the
batch path as `v3/messages/batch`, relative to nothing: `batch_url` is its own
setting, `{base_url}/v3/messages/batch` unless set. The document gives no
HTTP error codes and no error codes besides the status words; what each HTTP
status means here is our reading, written next to it in `CODES`. Error bodies
are taken to be `{"meta": {"timestamp", "transactionId", "explain"}}` (the
`meta` the batch answer documents), and `meta.explain` is the reason we keep.

Batching: a batch request carries one `from` and one `text` for all its
recipients, and the answer is matched back to our messages by mobile number,
so a batch holds messages with equal (sender, text) and never the same
recipient twice. Texts with the vendor's `{0}` placeholders go one by one:
the batch endpoint would try to fill them in from `params`.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterable, Sequence
from typing import Any

import httpx
from pydantic import SecretStr

from smsdispatch.config.settings import MessangiSettings
from smsdispatch.providers.base import Adapter, json_object, retry_after_seconds
from smsdispatch.providers.errors import ConfigurationError, VendorProtocolError
from smsdispatch.providers.reports import (
    ReportTable,
    json_report,
    lookup,
    moment,
    our_reference,
    text,
)
from smsdispatch.vocabulary.delivery import DeliveryReport, IncomingReport, MalformedReport
from smsdispatch.vocabulary.message import OutboundMessage
from smsdispatch.vocabulary.outcomes import CodeTable, Outcome, OutcomeKind, Rule
from smsdispatch.vocabulary.status import MessageStatus

ACCEPTED = OutcomeKind.ACCEPTED
PERMANENT = OutcomeKind.PERMANENT
ACCOUNT = OutcomeKind.ACCOUNT
RATE_LIMITED = OutcomeKind.RATE_LIMITED
RETRY = OutcomeKind.RETRY

CODES: CodeTable = {
    # -- data.status in a 2xx answer (documented for both send endpoints) --
    "QUEUE": Rule(ACCEPTED, "queued: acknowledged by the delivery process, not yet sent"),
    "DEQUEUED": Rule(ACCEPTED, "dequeued: ready to be published to the mobile operator"),
    # Not documented as send answers, only in the callback list; if one ever
    # comes back with an id, the vendor has the message in flight.
    "ACCEPTD": Rule(ACCEPTED, "accepted"),
    "ENROUTE": Rule(ACCEPTED, "en route"),
    "SENT": Rule(ACCEPTED, "sent"),
    # "An error occurred in the API logic and the message could not be
    # delivered", e.g. "Text exceeds the limit of allowed segments": sending
    # the same request again gives the same answer.
    "ERROR": Rule(PERMANENT, "the API could not process the message"),
    # -- batch answer: a recipient listed in data.invalidNumber --------------
    "invalidNumber": Rule(PERMANENT, "invalid number"),
    # -- HTTP statuses: the document names none; a careful integrator's reading --
    "400": Rule(PERMANENT, "request rejected: a field or the number is invalid"),
    "401": Rule(ACCOUNT, "API key rejected"),
    "403": Rule(ACCOUNT, "API key not allowed to send"),
    # A wrong base_url, not a bad message: pause and let an operator fix it
    # rather than fail every message.
    "404": Rule(ACCOUNT, "endpoint not found: check the messangi base_url"),
    "422": Rule(PERMANENT, "request rejected as unprocessable"),
    "429": Rule(RATE_LIMITED, "too many requests"),
    "500": Rule(RETRY, "server error"),
    "502": Rule(RETRY, "bad gateway"),
    "503": Rule(RETRY, "service unavailable"),
    "504": Rule(RETRY, "gateway timeout"),
}

S = MessageStatus
# The document's callback statuses, every one, in its order -> our status.
REPORT_STATUSES: ReportTable = {
    "DELIVRD": S.DELIVERED,
    "EXPIRED": S.EXPIRED,
    # Deleted before delivery (by the operator or the platform): it will not
    # arrive, and nothing says the network tried: failed, not undelivered.
    "DELETED": S.FAILED,
    "UNDELIV": S.UNDELIVERED,
    "ACCEPTD": S.ACCEPTED,
    # "Unknown error occurred with the mobile operator. This is very unlikely."
    # The vendor does not know the outcome either: keep waiting (the word is
    # kept in vendor_status) rather than claim one.
    "UNKNOWN": S.ACCEPTED,
    "REJECTD": S.FAILED,
    "INVALID_ROUTING": S.FAILED,
    "CODE_NOT_ALLOWED": S.FAILED,
    "BLACKLISTED": S.FAILED,
    "QUEUE": S.ACCEPTED,
    "DEQUEUED": S.ACCEPTED,
    "SENT": S.ACCEPTED,
    "ERROR": S.FAILED,
    "ENROUTE": S.ACCEPTED,
    "SEGMENTS_EXCEEDED": S.FAILED,
}

NOT_MENTIONED = "the batch answer neither issued an id for this recipient nor listed it as invalid"

# The batch endpoint's personalized fields: "Hi {0}, your balance is ${1}".
PLACEHOLDER = re.compile(r"\{\d+\}")


class BearerAuth(httpx.Auth):
    """`Authorization: Bearer <api key>`, as the document's curl example sends it."""

    def __init__(self, api_key: SecretStr) -> None:
        self._api_key = api_key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._api_key.get_secret_value()}"
        yield request


class MessangiAdapter(Adapter[MessangiSettings]):
    name = "messangi"
    codes = CODES
    supports_batch = True

    # -- requests ---------------------------------------------------------

    def build_request(self, message: OutboundMessage) -> httpx.Request:
        payload: dict[str, Any] = {
            "from": message.sender,
            "text": message.text,
            "to": message.recipient,
            "type": "MT",
            # Our reference: comes back in delivery reports. Messangi does not
            # reject a repeated externalId, so it cannot make a resend safe.
            "externalId": message.reference,
            **self._report_fields(),
        }
        return self._post(f"{self.settings.base_url.rstrip('/')}/v2/messages", payload)

    def build_batch_request(self, messages: Sequence[OutboundMessage]) -> httpx.Request:
        first = messages[0]
        if any(self.batch_key(m) != self.batch_key(first) for m in messages):
            raise ValueError("a messangi batch shares one sender and one text or template")
        payload: dict[str, Any] = {
            "from": first.sender,
            # A campaign's template goes once, with each recipient's values:
            # "Hi {0}" and params ["Ana"] (the document's personalized fields).
            "text": first.template if first.template is not None else first.text,
            # The document's example writes the key "to:" (sic); its parameter
            # table names it to.to, which is what we send.
            "to": [
                {"to": m.recipient, "params": list(m.params) if m.template is not None else []}
                for m in messages
            ],
            "type": "MT",
            # The batch format has one externalId for the whole request (the
            # document lists no per-recipient one under `to`), so no message's
            # own reference can go. The batch's: "batch" + the first message's
            # reference + its size, unique like the references and alphanumeric
            # as documented; not itself a reference, so a callback echoing it
            # matches no message by it. Each message is matched by the id
            # Messangi issued for its mobile in data.ids (parse_batch_response
            # records it as the tracking id), and its callbacks by that id.
            "externalId": f"batch{first.reference}x{len(messages)}",
            **self._report_fields(),
        }
        return self._post(self.settings.batch_endpoint(), payload)

    def _report_fields(self) -> dict[str, Any]:
        # "To notify the status of the message delivery through a callback,
        # the requestDR must be true." Without a report_url we ask for neither.
        if self.report_url is None:
            return {}
        return {"requestDR": True, "callbacks": self.report_url}

    def _post(self, url: str, payload: dict[str, Any]) -> httpx.Request:
        return self.client.build_request(
            "POST", url, json=payload, headers={"Accept": "application/json"}
        )

    def auth(self) -> httpx.Auth:
        if not self.settings.api_key.get_secret_value():
            raise ConfigurationError("messangi: api_key is not set")
        return BearerAuth(self.settings.api_key)

    # -- batching -----------------------------------------------------------

    def batch_key(self, message: OutboundMessage) -> object:
        if message.template is not None:
            return (message.sender, "template", message.template)
        if PLACEHOLDER.search(message.text):
            return ("alone", message.id)
        return (message.sender, message.text)

    def plan_batches(self, messages: Sequence[OutboundMessage]) -> Iterable[list[OutboundMessage]]:
        """Like the base, and no batch holds the same recipient twice: the
        answer is matched back to our messages by mobile number."""
        groups: dict[object, list[tuple[set[str], list[OutboundMessage]]]] = {}
        for message in messages:
            size = self.entry.request_size_for(message.sender)
            batches = groups.setdefault(self.batch_key(message), [])
            digits = message.recipient_digits
            for recipients, batch in batches:
                if len(batch) < size and digits not in recipients:
                    break
            else:
                recipients, batch = set(), []
                batches.append((recipients, batch))
            recipients.add(digits)
            batch.append(message)
        for batches in groups.values():
            for _, batch in batches:
                yield batch

    # -- delivery reports -------------------------------------------------------

    @classmethod
    def parse_report(cls, incoming: IncomingReport) -> DeliveryReport:
        """A callback: "HTTP POST access method and ... a JSON body".

        The document refers to a "Callback URL (MT)" section it does not
        include, so the body's fields are our reading of the send answer's
        `data`: `id` (Messangi's message id), `status` (a callback status
        word), `externalId` (ours, sent back "if you request callbacks") and
        `date`, when the status came about (kept as the report's `vendor_at`).
        A body wrapped in `{"data": {...}}` is read the same. The message is
        matched by `id`; `externalId` names it when the send was never
        recorded (an ambiguous send): a batch's externalId is not a message
        reference, so it matches nothing.
        """
        body = json_report(incoming, cls.name, "callback")
        if isinstance(body.get("data"), dict):
            body = body["data"]
        word = text(body.get("status"))
        if word is None:
            raise MalformedReport("messangi: the callback has no status")
        return DeliveryReport(
            lookup(REPORT_STATUSES, word, cls.name),
            word,
            tracking_id=text(body.get("id")),
            reference=our_reference(text(body.get("externalId"))),
            raw=incoming.raw,
            vendor_at=moment(body.get("date")),  # when the status came about, by Messangi
        )

    # -- answers --------------------------------------------------------------

    def parse_response(self, response: httpx.Response, message: OutboundMessage) -> Outcome:
        if not response.is_success:
            return self._http_error(response)
        body = json_object(response)
        data = _data(body)
        status = _status(data)
        if _accepting(status):
            tracking_id = data.get("id")
            if not isinstance(tracking_id, str) or not tracking_id:
                raise VendorProtocolError(f"status {status} without data.id")
            return Outcome.accepted(tracking_id, vendor_status=status, raw=response.text)
        return self._status_outcome(status, body, response)

    def parse_batch_response(
        self, response: httpx.Response, messages: Sequence[OutboundMessage]
    ) -> list[Outcome]:
        if not response.is_success:
            return [self._http_error(response)] * len(messages)
        body = json_object(response)
        data = _data(body)
        status = _status(data)
        invalid = {_digits(n) for n in _list(data, "invalidNumber") if isinstance(n, str)}
        invalid_number = Outcome.from_code("invalidNumber", CODES, raw=response.text)
        if not _accepting(status):
            failed = self._status_outcome(status, body, response)
            return [invalid_number if m.recipient_digits in invalid else failed for m in messages]
        issued = {
            _digits(item["mobile"]): item["id"]
            for item in _list(data, "ids")
            if isinstance(item, dict)
            and isinstance(item.get("id"), str)
            and item["id"]
            and isinstance(item.get("mobile"), str)
        }
        outcomes = []
        for message in messages:
            digits = message.recipient_digits
            if digits in issued:
                outcomes.append(
                    Outcome.accepted(issued[digits], vendor_status=status, raw=response.text)
                )
            elif digits in invalid:
                outcomes.append(invalid_number)
            else:
                # The vendor took the request and says nothing of this
                # recipient: it may or may not have queued it, and it does not
                # deduplicate our externalId, so a resend could send it twice.
                outcomes.append(
                    Outcome(
                        OutcomeKind.AMBIGUOUS,
                        code="ambiguous",
                        reason=NOT_MENTIONED,
                        raw=response.text,
                    )
                )
        return outcomes

    def _status_outcome(
        self, status: str, body: dict[str, Any], response: httpx.Response
    ) -> Outcome:
        # A status word this table does not know came with a 2xx: the vendor
        # may have the message, so reconcile rather than fail or resend it.
        return Outcome.from_code(
            status, CODES, reason=_explain(body), raw=response.text, default=OutcomeKind.AMBIGUOUS
        )

    def _http_error(self, response: httpx.Response) -> Outcome:
        try:
            explain = _explain(json_object(response))
        except VendorProtocolError:
            explain = None
        code = str(response.status_code)
        if code not in CODES:
            return self.classify_http(response, reason=explain)
        retry_after = retry_after_seconds(response) if response.status_code == 429 else None
        return Outcome.from_code(
            code, CODES, reason=explain, raw=response.text, retry_after=retry_after
        )


def _accepting(status: str) -> bool:
    rule = CODES.get(status)
    return rule is not None and rule.kind is ACCEPTED


def _data(body: dict[str, Any]) -> dict[str, Any]:
    data = body.get("data")
    if not isinstance(data, dict):
        raise VendorProtocolError("answer without a data object")
    return data


def _status(data: dict[str, Any]) -> str:
    status = data.get("status")
    if not isinstance(status, str) or not status:
        raise VendorProtocolError("answer without data.status")
    return status


def _list(data: dict[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise VendorProtocolError(f"data.{key} is not an array")
    return value


def _explain(body: dict[str, Any]) -> str | None:
    meta = body.get("meta")
    if isinstance(meta, dict):
        explain = meta.get("explain")
        if isinstance(explain, str) and explain:
            return explain
    return None


def _digits(number: str) -> str:
    # "The plus sign prefix of the format is optional", in answers too.
    return number.strip().removeprefix("+")
