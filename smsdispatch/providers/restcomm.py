"""Restcomm (CPaaS) adapter: one form POST per SMS, HTTP basic auth.

    POST {base_url}/Accounts/{AccountSid}/SMS/Messages.json
        From, To (E.164 with '+'), Body, StatusCallback (only with a report URL)
    GET  {base_url}/Accounts/{AccountSid}/SMS/Messages/{MessageSid}.json

`base_url` ends in `/2012-04-24`, after whichever prefix the deployment uses
(the document shows both `/api/2012-04-24` and `/restcomm/2012-04-24`).

The answer to a send is the SMS representation: its `sid` is our tracking id.
Restcomm has no field for our reference and does not deduplicate, so an
ambiguous read timeout stays AMBIGUOUS (reconciliation via `fetch_status`).

The document does not say how a send is refused. Our reading, as a careful
integrator would code against it:

- HTTP 401 (wrong AccountSid or AuthToken, or a path sid that is not ours)
  means the account cannot send, whatever the body says.
- Any other 4xx/5xx carries a JSON body `{"code": <int>, "message": "...",
  "more_info": ..., "status": <http status>}` whose `code` comes from the
  document's "SMS-specific error codes" when one applies. We classify by that
  code when there is one, else by the HTTP status (`classify_http`).
- A 2xx representation whose status is `failed` (or `undelivered`) carries
  `error_code`/`error_message` as the SMS attributes describe; the code is
  classified through the same table.
"""

from __future__ import annotations

import email.utils
import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from smsdispatch.config.catalog import POOL_PREFIX
from smsdispatch.config.settings import RestcommSettings
from smsdispatch.providers.base import Adapter, json_object, retry_after_seconds
from smsdispatch.providers.errors import ConfigurationError, VendorProtocolError
from smsdispatch.providers.reports import ReportTable, lookup, moment
from smsdispatch.vocabulary.delivery import DeliveryReport, IncomingReport, MalformedReport
from smsdispatch.vocabulary.message import OutboundMessage
from smsdispatch.vocabulary.outcomes import CodeTable, Outcome, OutcomeKind, Rule, clip_raw
from smsdispatch.vocabulary.status import MessageStatus

A = OutcomeKind

# The document's "SMS-specific error codes", every line, in its order.
CODES: CodeTable = {
    # Restcomm's queue towards the provider is full: back off, the vendor as a whole.
    "30001": Rule(A.RATE_LIMITED, "Queue overflow"),
    "30002": Rule(A.ACCOUNT, "Account suspended"),
    # 30003-30007: this destination or this content, not the account; resending
    # the same message now will not change the answer. An operator who finds
    # 30003 transient on a route can override it in the catalog.
    "30003": Rule(A.PERMANENT, "Unreachable destination handset"),
    "30004": Rule(A.PERMANENT, "Message blocked"),
    "30005": Rule(A.PERMANENT, "Unknown destination handset"),
    "30006": Rule(A.PERMANENT, "Landline or unreachable carrier"),
    "30007": Rule(A.PERMANENT, "Carrier violation"),
    # The document gives no cause; an unexplained failure is treated as transient
    # (bounded by the retry budget), like a 5xx.
    "30008": Rule(A.RETRY, "Unknown error"),
    # A segment of a concatenated message was lost on the way to the provider;
    # the recipient got an incomplete message at best, so the whole message is sent
    # again. (Not stated by the document.)
    "30009": Rule(A.RETRY, "Missing segment"),
    # We send no MaxPrice: the cap is the account's price limit for this
    # destination. It refuses this destination, not the whole vendor: a message
    # that named Restcomm fails, a routed one goes to another vendor of its route.
    "30010": Rule(A.VENDOR_REFUSED, "Message price exceeds max price"),
    # Restcomm passed the SMS to its SMPP peer and got no submit_sm_resp: the
    # SMSC may well have taken it, exactly like our own read timeout one hop
    # further. Restcomm does not deduplicate, so resending could deliver twice:
    # the status query or the StatusCallback decides.
    "30090": Rule(A.AMBIGUOUS, "No Response received for SMPP Request"),
}

# Messages asked for per list query when looking for a send whose answer was lost.
SEARCH_PAGE = 50
# How the list answer says there is no such page (its `next_page_uri`): the
# document's own example writes the string "null".
NO_PAGE: tuple[object, ...] = (None, "", "null")

# Representation statuses that mean Restcomm took the message. A POST answer is
# queued/sending/sent per the document; delivered would only be later news.
ACCEPTED_STATUSES = frozenset({"queued", "sending", "sent", "delivered"})
FAILED_STATUSES = frozenset({"failed", "undelivered"})

# The document's "Status Description" -> our status, for the StatusCallback's
# MessageStatus (sent, failed, delivered, undelivered) and the status query's
# `status` alike. "received" is an inbound message's: not a report of ours.
REPORT_STATUSES: ReportTable = {
    "queued": MessageStatus.ACCEPTED,
    "sending": MessageStatus.ACCEPTED,
    "sent": MessageStatus.ACCEPTED,
    "delivered": MessageStatus.DELIVERED,
    "undelivered": MessageStatus.UNDELIVERED,
    # "The reason could be that the message was expired, rejected or deleted
    # by the provider": Restcomm does not tell expiry apart, so FAILED.
    "failed": MessageStatus.FAILED,
}


@dataclass(frozen=True, slots=True)
class VendorStatus:
    """What Restcomm's status query said about one message."""

    tracking_id: str
    found: bool  # False: Restcomm answered 404, it has no message with this sid
    status: str | None = None  # queued, sending, sent, failed, delivered, undelivered, ...
    error_code: str | None = None  # set when status is failed or undelivered
    error_message: str | None = None
    raw: str | None = None
    updated_at: datetime | None = None  # date_updated: when the status last changed


class RestcommAdapter(Adapter[RestcommSettings]):
    name = "restcomm"
    codes = CODES
    # No reference field in the API, so nothing for Restcomm to deduplicate.
    deduplicates_reference: ClassVar[bool] = False

    # -- requests ----------------------------------------------------------

    def auth(self) -> httpx.BasicAuth:
        sid = self.settings.account_sid.get_secret_value()
        token = self.settings.auth_token.get_secret_value()
        if not sid or not token:
            raise ConfigurationError("restcomm: account_sid and auth_token must be set")
        return httpx.BasicAuth(sid, token)

    @cached_property
    def _messages_url(self) -> str:
        sid = quote(self.settings.account_sid.get_secret_value(), safe="")
        return f"{self.settings.base_url.rstrip('/')}/Accounts/{sid}/SMS/Messages"

    def build_request(self, message: OutboundMessage) -> httpx.Request:
        form = {"From": message.sender, "To": message.recipient, "Body": message.text}
        if self.report_url is not None:
            # StatusCallbackMethod defaults to POST, which is what our webhook takes.
            form["StatusCallback"] = self.report_url
        return self.client.build_request("POST", f"{self._messages_url}.json", data=form)

    # -- answers -----------------------------------------------------------

    def parse_response(self, response: httpx.Response, message: OutboundMessage) -> Outcome:
        if not response.is_success:
            return self._refused(response)
        body = json_object(response)
        sid = body.get("sid")
        status = body.get("status")
        if not isinstance(sid, str) or not sid or not isinstance(status, str):
            raise VendorProtocolError("answer has no sid or status")
        if status in ACCEPTED_STATUSES:
            return Outcome.accepted(sid, vendor_status=status, raw=response.text)
        if status in FAILED_STATUSES:
            # Keep the sid: a status query can follow up on it (30090 above all).
            return replace(self._failed(body, response.text), tracking_id=sid, vendor_status=status)
        raise VendorProtocolError(f"unknown status {status!r} in a send answer")

    def _failed(self, body: dict[str, Any], raw: str) -> Outcome:
        code = _code_text(body.get("error_code"))
        reason = _text(body.get("error_message"))
        if code is None:
            # The document's `failed` gives no cause; treated like 30008 "Unknown
            # error": transient, within the retry budget.
            return Outcome(
                A.RETRY,
                code="failed",
                raw=clip_raw(raw),
                reason=reason or "failed without an error code",
            )
        return Outcome.from_code(code, CODES, reason=reason, raw=raw)

    def _refused(self, response: httpx.Response) -> Outcome:
        """A non-2xx answer: by its JSON `code` when it has one, else by HTTP status."""
        status = response.status_code
        try:
            body: dict[str, Any] = json_object(response)
        except VendorProtocolError:
            body = {}
        reason = _text(body.get("message"))
        code = _code_text(body.get("code"))
        if status == 401 or code is None:
            return self.classify_http(response, reason=reason)
        if code not in CODES:
            # Keeps the class of its HTTP status, unless that would fail the
            # message for a code nobody documented (base.classify_undocumented).
            return self.classify_undocumented(response, code, reason)
        return Outcome.from_code(
            code, CODES, reason=reason, raw=response.text, retry_after=retry_after_seconds(response)
        )

    # -- delivery reports ----------------------------------------------------

    supports_status_query: ClassVar[bool] = True

    @classmethod
    def parse_report(cls, incoming: IncomingReport) -> DeliveryReport:
        """The StatusCallback: a form POST with MessageSid, MessageStatus and,
        on failure, ErrorCode (the document's "Status Callback HTTP Parameters")."""
        if incoming.method != "POST":
            # StatusCallbackMethod is not sent, so Restcomm uses its default, POST.
            raise MalformedReport("restcomm: a StatusCallback is a POST")
        form = incoming.form()
        sid, word = form.get("MessageSid"), form.get("MessageStatus")
        if not sid or not word:
            raise MalformedReport("restcomm: a StatusCallback needs MessageSid and MessageStatus")
        code = _code_text(form.get("ErrorCode"))
        return DeliveryReport(
            lookup(REPORT_STATUSES, word, cls.name),
            word,
            tracking_id=sid,
            error_code=code,
            error_reason=_reason(code),
            raw=incoming.raw,
        )

    async def query_status(self, tracking_id: str) -> DeliveryReport | Outcome:
        """`fetch_status` as a report. A sid Restcomm does not know (404) is no
        answer (see `fetch_status`): the message waits for its deadline."""
        found = await self.fetch_status(tracking_id)
        if isinstance(found, Outcome):
            return found
        if not found.found or found.status not in REPORT_STATUSES:
            return Outcome(
                A.RETRY,
                code="not_found" if not found.found else "unmapped",
                reason=f"status query: no usable status ({found.status or 'HTTP 404'})",
                raw=found.raw,
            )
        assert found.status is not None
        return DeliveryReport(
            REPORT_STATUSES[found.status],
            found.status,
            tracking_id=tracking_id,
            error_code=found.error_code,
            error_reason=found.error_message or _reason(found.error_code),
            raw=found.raw or "",
            vendor_at=found.updated_at,
        )

    supports_sent_search: ClassVar[bool] = True

    async def find_sent(
        self, message: OutboundMessage, since: datetime, until: datetime
    ) -> list[DeliveryReport] | Outcome:
        """The list query ("Get SMS List") by To, From, StartTime and EndTime:
        a report for each listed message with this recipient, a sender this
        message could have gone from, this text, created in the window.

        An empty list must mean "Restcomm has no such message": reconciliation
        sends the message again on it (reports/reconcile.py), so a false
        "none" is a duplicate SMS. Whenever the answer cannot show that (a
        list longer than the page we read, an item that looks like ours but
        cannot be judged, a pool that is no longer in the catalog), the answer
        is RETRY "uncertain" instead, and the message waits for the next look
        or its `unknown` deadline.
        """
        senders = self._senders_of(message.sender)
        if senders is None:
            return _uncertain(f"sender {message.sender} names a pool the catalog does not have")
        items = await self._list_messages(message, since, until)
        if isinstance(items, Outcome):
            return items
        found: list[DeliveryReport] = []
        for item in items:
            listed = _listed_report(item, message, senders, since, until)
            if isinstance(listed, Outcome):
                return listed
            if listed is not None:
                found.append(listed)
        return found

    async def _list_messages(
        self, message: OutboundMessage, since: datetime, until: datetime
    ) -> list[Any] | Outcome:
        """The listed items of one whole page of the list query, or why there
        is no such page to judge (the query failed, or the page may be partial)."""
        params = _search_params(message, since, until)
        request = self.client.build_request("GET", f"{self._messages_url}.json", params=params)
        try:
            response = await self.client.send(request, auth=self.auth())
        except httpx.TransportError as exc:
            return Outcome(A.RETRY, code=type(exc).__name__, reason="list query failed")
        if not response.is_success:
            return self._refused(response)
        try:
            body = json_object(response)
            items = body.get("messages")
            if not isinstance(items, list):
                raise VendorProtocolError("list answer without messages")
        except VendorProtocolError as exc:
            return Outcome(A.RETRY, code="unreadable", reason=f"list query: {exc}")
        if (partial := _partial_page(body, items)) is not None:
            return _uncertain(partial)
        return items

    def _senders_of(self, sender: str) -> tuple[str, ...] | None:
        """Every sender a message from `sender` may have gone from: a pool's
        members, or the sender itself; None for a pool the catalog lacks."""
        if sender.startswith(POOL_PREFIX):
            return self.entry.pool(sender)
        return (sender,)

    # -- status query -------------------------------------------------------

    async def fetch_status(self, tracking_id: str) -> VendorStatus | Outcome:
        """Restcomm's current record of one message we sent.

        A `VendorStatus` when Restcomm answered about the sid (found or 404:
        for a sid Restcomm itself issued, 404 is an anomaly to report, not proof
        that resending is safe; a wrong base_url would answer 404 too);
        otherwise an `Outcome` saying why there is no answer yet (RETRY for
        network trouble or an unreadable body, ACCOUNT for bad credentials, ...).
        A GET changes nothing, so every transport error is simply retryable.
        """
        url = f"{self._messages_url}/{quote(tracking_id, safe='')}.json"
        request = self.client.build_request("GET", url)
        try:
            response = await self.client.send(request, auth=self.auth())
        except httpx.TransportError as exc:
            return Outcome(
                A.RETRY,
                code=type(exc).__name__,
                reason=f"status query failed: {type(exc).__name__}",
            )
        if response.status_code == 404:
            return VendorStatus(tracking_id, found=False, raw=clip_raw(response.text))
        if not response.is_success:
            return self._refused(response)
        try:
            body = json_object(response)
            status = body.get("status")
            if not isinstance(status, str) or not status:
                raise VendorProtocolError("answer has no status")
        except VendorProtocolError as exc:
            return Outcome(
                A.RETRY,
                code="unreadable",
                reason=f"status query: {exc}",
                raw=clip_raw(response.text),
            )
        return VendorStatus(
            tracking_id,
            found=True,
            status=status,
            error_code=_code_text(body.get("error_code")),
            error_message=_text(body.get("error_message")),
            raw=clip_raw(response.text),
            updated_at=moment(body.get("date_updated")),
        )


def _code_text(value: object) -> str | None:
    """A vendor code as text ("30003"), whether sent as a number or a string."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _search_params(message: OutboundMessage, since: datetime, until: datetime) -> dict[str, str]:
    """The list query's filters ("Get SMS List") for a message sent in the window."""
    params = {
        # Filtered in the form we sent (E.164 with '+', `build_request`):
        # Restcomm filters what it stored, and it stores the number it was
        # given; the document's list example shows digits only because its
        # send example sent digits. An item's numbers are compared with or
        # without the '+' all the same (`_same_number`).
        "To": message.recipient,
        # The filters are whole seconds at best; the window is widened by
        # one and date_created is checked by `_listed_report`.
        "StartTime": (since - timedelta(seconds=1)).isoformat(timespec="seconds"),
        "EndTime": (until + timedelta(seconds=1)).isoformat(timespec="seconds"),
        "PageSize": str(SEARCH_PAGE),
        "SortBy": "DateCreated:asc",
    }
    if not message.sender.startswith(POOL_PREFIX):
        # A pool's row names the pool until the send is recorded (the member
        # chosen is recorded with it): Restcomm knows only the member, so a
        # pool is looked for by recipient alone and its members are
        # recognised by `_looks_like`.
        params["From"] = message.sender
    return params


def _listed_report(
    item: Any,
    message: OutboundMessage,
    senders: tuple[str, ...],
    since: datetime,
    until: datetime,
) -> DeliveryReport | Outcome | None:
    """A listed item as a report of `message`; None when it is another
    message, or this one created outside the window; RETRY "uncertain" when
    it cannot be told."""
    ours = _looks_like(item, message, senders)
    if ours is False:
        return None
    if ours is None:
        return _uncertain("an item that may be this message cannot be read")
    # Our recipient, sender and text: this very send, unless it was
    # created outside the window, so a date, a sid and a status we can
    # read are needed to tell.
    created = _rfc2822(item.get("date_created"))
    if created is None:
        return _uncertain("an item like this message has no readable date_created")
    if not since - timedelta(seconds=1) <= created <= until + timedelta(seconds=1):
        return None
    sid, status = _text(item.get("sid")), _text(item.get("status"))
    if sid is None or status is None or status not in REPORT_STATUSES:
        return _uncertain(f"an item like this message has status {status!r}, sid {sid!r}")
    code = _code_text(item.get("error_code"))
    return DeliveryReport(
        REPORT_STATUSES[status],
        status,
        tracking_id=sid,
        reference=message.reference,
        error_code=code,
        error_reason=_text(item.get("error_message")) or _reason(code),
        raw=clip_raw(json.dumps(item)) or "",
        vendor_at=moment(item.get("date_updated")),
    )


def _uncertain(why: str) -> Outcome:
    """No answer from a list that cannot show the message absent."""
    return Outcome(A.RETRY, code="uncertain", reason=f"list query: {why}")


def _partial_page(body: dict[str, Any], items: list[Any]) -> str | None:
    """Why the page read may not hold every message the query matched, if it may not.

    The answer's paging fields ("Additional Paging Information"): `total`
    items in all, a `next_page_uri` when there is more. A page as full as we
    asked (or as the vendor capped it, `page_size`) may have more behind it
    even where the vendor leaves both out.
    """
    total = body.get("total")
    if isinstance(total, int) and not isinstance(total, bool) and total > len(items):
        return f"{total} messages listed, {len(items)} on the page"
    if body.get("next_page_uri") not in NO_PAGE:
        return "the list has a next page"
    page_size = body.get("page_size")
    if not isinstance(page_size, int) or isinstance(page_size, bool) or page_size < 1:
        page_size = SEARCH_PAGE
    if len(items) >= min(page_size, SEARCH_PAGE):
        return f"a full page of {len(items)}: there may be more"
    return None


def _looks_like(item: object, message: OutboundMessage, senders: tuple[str, ...]) -> bool | None:
    """Whether a listed item may be `message`: False when its body, recipient
    or sender is plainly another's; None when it cannot be told (a field
    missing or not text); True when all three are ours."""
    if not isinstance(item, dict):
        return None
    body, to, sender = item.get("body"), item.get("to"), item.get("from")
    if isinstance(body, str) and body != message.text:
        return False
    if isinstance(to, str) and not _same_number(to, message.recipient):
        return False
    if isinstance(sender, str) and not any(_same_number(sender, s) for s in senders):
        return False
    if not (isinstance(body, str) and isinstance(to, str) and isinstance(sender, str)):
        return None
    return True


def _same_number(shown: str, ours: str) -> bool:
    """One number, whether shown with its '+' or without (the document's
    examples print numbers as digits only)."""
    return shown.removeprefix("+") == ours.removeprefix("+")


def _rfc2822(value: object) -> datetime | None:
    """date_created ("Thu, 4 Jul 2019 07:02:28 +0000") as an aware datetime."""
    if not isinstance(value, str):
        return None
    try:
        return email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None


def _reason(code: str | None) -> str | None:
    """The document's words for an SMS error code, where it has them."""
    rule = CODES.get(code) if code else None
    return rule.reason if rule else None
