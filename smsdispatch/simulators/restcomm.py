"""Restcomm simulator: the SMS resource of the 2012-04-24 API.

Mounted at /restcomm, so with base_url `<root>/restcomm/2012-04-24`:

    POST /2012-04-24/Accounts/{AccountSid}/SMS/Messages.json        send one SMS
    GET  /2012-04-24/Accounts/{AccountSid}/SMS/Messages.json        list (To, From,
         StartTime, EndTime, Page, PageSize, SortBy=DateCreated[:asc|:desc])
    GET  /2012-04-24/Accounts/{AccountSid}/SMS/Messages/{Sid}.json  one SMS

HTTP basic auth AccountSid:AuthToken, and the AccountSid in the path must be
the same account; anything else is 401. Where the document is silent the
simulator answers as the adapter module describes: refusals are JSON
`{"status": <http>, "message": ..., "code"?: <SMS error code>}`.

Choices not in the document:
- A To that is neither E.164 (the '+' optional: the document's own examples
  omit it) nor `client:<name>` is a plain 400 without an SMS error code; the
  document's code table is about provider failures, not request validation.
- No text length limit is enforced: the document states none.
- A send is answered with status "sending", as in the document's examples;
  the stored record then reads "sent" (handed to the provider) until the
  message's fate is due (smsdispatch.simulators.common) or a test moves it on with
  `set_status`: then delivered, undelivered (error 30003) or, for an
  expired message, failed ("expired, rejected or deleted by the provider").
- With reports on, a message sent with a StatusCallback gets the document's
  two events in its order, when its fate is due: MessageStatus "sent", then
  the delivery status; form fields MessageSid, MessageStatus, ErrorCode (on
  failure), AccountSid, From, To, Body, as the document lists them.
- The stored numbers are printed as they were sent, or without their '+'
  (`Control.numbers_without_plus`), as the document's examples print them;
  the list's To and From filters match the number as it was sent.
- `fail_with` takes a documented code ("30003": that code's JSON refusal),
  "failed:30003" (a 200 representation with status failed and that
  error_code), or "http:NNN" (plain text HTTP NNN).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from smsdispatch.config.settings import Settings
from smsdispatch.simulators.common import Fate, Received, ReportCall, VendorSimulator

API_VERSION = "2012-04-24"

# The document's "SMS-specific error codes", with the HTTP status the
# simulator refuses a send with (the document states none).
FAULTS: dict[str, tuple[int, str]] = {
    "30001": (429, "Queue overflow"),
    "30002": (403, "Account suspended"),
    "30003": (400, "Unreachable destination handset"),
    "30004": (400, "Message blocked"),
    "30005": (400, "Unknown destination handset"),
    "30006": (400, "Landline or unreachable carrier"),
    "30007": (400, "Carrier violation"),
    "30008": (500, "Unknown error"),
    "30009": (400, "Missing segment"),
    "30010": (400, "Message price exceeds max price"),
    # The SMPP peer did not answer in time: Restcomm acts as a gateway here.
    "30090": (504, "No Response received for SMPP Request"),
}

E164 = re.compile(r"\+?[1-9][0-9]{1,14}")
CLIENT_PREFIX = "client:"
SORTABLE = {
    "DateCreated": "created",
    "From": "sender",
    "To": "to",
    "Direction": "direction",
    "Status": "status",
}


@dataclass(slots=True)
class StoredSms:
    """One SMS as Restcomm keeps it, for the status query and the list."""

    sid: str
    account_sid: str
    sender: str
    to: str
    body: str
    status: str
    created: float
    status_callback: str | None
    error_code: int | None = None
    error_message: str | None = None
    direction: str = "outbound-api"
    updated: float = 0.0

    def representation(self, *, segments: bool = True, plus: bool = True) -> dict[str, Any]:
        """The SMS resource; `plus=False` prints its numbers as digits only."""
        created = datetime.fromtimestamp(self.created, UTC)
        updated = datetime.fromtimestamp(self.updated or self.created, UTC)
        body: dict[str, Any] = {
            "sid": self.sid,
            "date_created": format_datetime(created),
            "date_updated": format_datetime(updated),
            "date_sent": created.strftime("%Y-%m-%dT%H:%M:%S.")
            + f"{created.microsecond // 1000:03d}Z",
            "account_sid": self.account_sid,
            "from": self.sender if plus else self.sender.removeprefix("+"),
            "to": self.to if plus else self.to.removeprefix("+"),
            "body": self.body,
            "status": self.status,
            "direction": self.direction,
            "api_version": API_VERSION,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "uri": f"/{API_VERSION}/Accounts/{self.account_sid}/SMS/Messages/{self.sid}.json",
        }
        if segments:  # "This is not available in POST response."
            body["num_segments"] = segment_count(self.body)
        return body


# The SMS error code a settled message carries, by its fate's status.
SETTLED_ERRORS: dict[str, int] = {"undelivered": 30003}


class RestcommSimulator(VendorSimulator):
    name = "restcomm"
    FINAL_WORDS = {"delivered": "delivered", "undelivered": "undelivered", "expired": "failed"}

    def __init__(self, settings: Settings) -> None:
        self.messages: dict[str, StoredSms] = {}
        self._sid = settings.restcomm.account_sid.get_secret_value().encode()
        self._token = settings.restcomm.auth_token.get_secret_value().encode()
        super().__init__(settings)

    def routes(self) -> list[BaseRoute]:
        base = f"/{API_VERSION}/Accounts/{{account_sid}}/SMS/Messages"
        return [
            Route(f"{base}.json", self.send_sms, methods=["POST"]),
            Route(f"{base}.json", self.list_sms, methods=["GET"]),
            Route(f"{base}/{{sid}}.json", self.get_sms, methods=["GET"]),
        ]

    def new_tracking_id(self) -> str:
        return f"SM{secrets.token_hex(16)}"

    def reset(self) -> None:
        super().reset()
        self.messages = {}

    def set_status(
        self, sid: str, status: str, error_code: int | None = None, error_message: str | None = None
    ) -> None:
        """Move a stored SMS on (delivered, undelivered, failed), as the provider would."""
        sms = self.messages[sid]
        sms.status, sms.error_code, sms.error_message = status, error_code, error_message
        sms.updated = time.time()

    def on_settled(self, received: Received, fate: Fate) -> None:
        sms = self.messages.get(received.tracking_id)
        if sms is not None:
            self._catch_up(sms, fate)

    def _catch_up(self, sms: StoredSms, fate: Fate | None) -> None:
        """Move a stored SMS to its fate once due (a test's set_status stands)."""
        if fate is not None and sms.status == "sent":
            code = SETTLED_ERRORS.get(fate.word)
            self.set_status(sms.sid, fate.word, code, FAULTS[str(code)][1] if code else None)

    def report_calls(self, received: Received, fate: Fate) -> list[ReportCall]:
        sms = self.messages.get(received.tracking_id)
        if sms is None or sms.status_callback is None:
            return []
        common = {
            "MessageSid": sms.sid,
            "AccountSid": sms.account_sid,
            "From": sms.sender,
            "To": sms.to,
            "Body": sms.body,
        }
        final = {**common, "MessageStatus": sms.status}
        if sms.error_code is not None:
            final["ErrorCode"] = str(sms.error_code)
        return [
            ReportCall("POST", sms.status_callback, data={**common, "MessageStatus": "sent"}),
            ReportCall("POST", sms.status_callback, data=final),
        ]

    # -- endpoints -----------------------------------------------------------

    async def send_sms(self, request: Request) -> Response:
        if (fault := await self.begin()) is not None:
            return fault
        account_sid = request.path_params["account_sid"]
        if not self._authorized(request, account_sid):
            return unauthorized()
        try:
            form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        except UnicodeDecodeError:
            return error(400, "The request body is not UTF-8 form data")
        for field in ("From", "To", "Body"):
            if not form.get(field):
                return error(400, f"{field} is required")
        to = form["To"]
        if not (E164.fullmatch(to) or (to.startswith(CLIENT_PREFIX) and len(to) > 7)):
            return error(400, "To must be an E.164 phone number or client:<name>")
        if (refused := self.admit(1)) is not None:
            return refused
        received = self.accept(to=to, sender=form["From"], text=form["Body"], reference=None)
        sms = StoredSms(
            received.tracking_id,
            account_sid,
            form["From"],
            to,
            form["Body"],
            "sending",
            received.at,
            form.get("StatusCallback") or None,
        )
        answer = JSONResponse(sms.representation(segments=False, plus=self._plus), status_code=200)
        sms.status = "sent"
        self.messages[sms.sid] = sms
        return await self.finish(answer)

    async def get_sms(self, request: Request) -> Response:
        if not self._authorized(request, request.path_params["account_sid"]):
            return unauthorized()
        sms = self.messages.get(request.path_params["sid"])
        if sms is None:
            return error(404, "The requested resource was not found")
        self._catch_up(sms, self.fate(sms.sid))
        return JSONResponse(sms.representation(plus=self._plus))

    async def list_sms(self, request: Request) -> Response:
        account_sid = request.path_params["account_sid"]
        if not self._authorized(request, account_sid):
            return unauthorized()
        query = request.query_params
        try:
            page = int(query.get("Page", "0"))
            page_size = int(query.get("PageSize", "50"))
            start = parse_time(query.get("StartTime"), end=False)
            end = parse_time(query.get("EndTime"), end=True)
        except ValueError:
            return error(400, "Invalid Page, PageSize, StartTime or EndTime")
        if page < 0 or not 1 <= page_size <= 1000:
            return error(400, "Invalid Page or PageSize")
        sort_field, _, direction = query.get("SortBy", "DateCreated:asc").partition(":")
        if sort_field not in SORTABLE or direction not in ("", "asc", "desc"):
            return error(400, "Invalid SortBy")
        to, sender = query.get("To"), query.get("From")
        rows = [
            s
            for s in self.messages.values()
            if (to is None or s.to == to)
            and (sender is None or s.sender == sender)
            and (start is None or s.created >= start)
            and (end is None or s.created < end)
        ]
        for sms in rows:
            self._catch_up(sms, self.fate(sms.sid))
        rows.sort(key=lambda s: getattr(s, SORTABLE[sort_field]), reverse=direction == "desc")
        total = len(rows)
        num_pages = max(1, math.ceil(total / page_size))
        first = page * page_size
        chunk = rows[first : first + page_size]
        path = f"/{API_VERSION}/Accounts/{account_sid}/SMS/Messages"
        params = {k: v for k, v in query.items() if k not in ("Page", "PageSize")}

        def page_uri(n: int) -> str:
            return f"{path}?{urlencode({**params, 'Page': n, 'PageSize': page_size})}"

        return JSONResponse(
            {
                "page": page,
                "num_pages": num_pages,
                "page_size": page_size,
                "total": total,
                "start": str(first),
                "end": str(first + max(len(chunk) - 1, 0)),
                "uri": path,
                "first_page_uri": page_uri(0),
                "previous_page_uri": page_uri(page - 1) if page > 0 else "null",
                "next_page_uri": page_uri(page + 1) if page + 1 < num_pages else "null",
                "last_page_uri": page_uri(num_pages - 1),
                "messages": [s.representation(plus=self._plus) for s in chunk],
            }
        )

    @property
    def _plus(self) -> bool:
        return not self.state.control.numbers_without_plus

    def _authorized(self, request: Request, path_sid: str) -> bool:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic" or not self._sid:
            return False
        try:
            user, sep, password = base64.b64decode(encoded, validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return False
        # Evaluate every comparison: no early exit on the first mismatch.
        checks = (
            secrets.compare_digest(user, self._sid),
            secrets.compare_digest(password, self._token),
            secrets.compare_digest(path_sid.encode(), self._sid),
        )
        return bool(sep) and all(checks)

    # -- faults ----------------------------------------------------------------

    def fault_response(self, code: str) -> Response:
        if code.startswith("http:"):
            status = int(code.removeprefix("http:"))
            return PlainTextResponse(f"HTTP {status}", status_code=status)
        if code.startswith("failed:"):
            error_code = code.removeprefix("failed:")
            sms = StoredSms(
                self.new_tracking_id(),
                self._sid.decode(),
                "",
                "",
                "",
                "failed",
                time.time(),
                None,
                int(error_code),
                FAULTS.get(error_code, (0, "Unknown code"))[1],
            )
            return JSONResponse(sms.representation(segments=False))
        if code in FAULTS:
            status, message = FAULTS[code]
            return error(status, message, int(code))
        if code.isdigit():
            return error(400, "Unknown code", int(code))
        raise ValueError(f"restcomm simulator: no documented answer for fault {code!r}")

    def throttle_response(self) -> Response:
        return self.fault_response("30001")


def error(status: int, message: str, code: int | None = None) -> JSONResponse:
    body: dict[str, Any] = {"status": status, "message": message}
    if code is not None:
        body["code"] = code
    return JSONResponse(body, status_code=status)


def unauthorized() -> JSONResponse:
    response = error(401, "Authentication required")
    response.headers["WWW-Authenticate"] = 'Basic realm="Restcomm"'
    return response


def parse_time(value: str | None, *, end: bool) -> float | None:
    """ISO-8601 as epoch seconds; a bare date as an EndTime covers that whole day."""
    if not value:
        return None
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if end:
        # The filter is inclusive ("on this date/time or earlier"); we compare with <.
        moment += timedelta(days=1) if len(value) == 10 else timedelta(microseconds=1)
    return moment.timestamp()


def segment_count(text: str) -> int:
    """Segments as a GSM-7 (ASCII approximated) or UCS-2 SMS would take."""
    single, multi = (160, 153) if text.isascii() else (70, 67)
    return 1 if len(text) <= single else math.ceil(len(text) / multi)
