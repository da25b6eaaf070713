"""Cue simulator: `GET /cue/json?action=message_send&username=...&password=...`.

Every answer is HTTP 200 with `{"status", "message", "details"}`, as Cue's
document shows. Checks, in order: required parameters present (-12), action
(-13), credentials (-2), destination (-4), sender (-5), text (-6 empty, -8 too
long), report_mask (-15), report_url (-16), client_reference already used (-7,
not recorded). Where the document gives no rule the simulator chooses one:

- destination: international digits without '+' or a leading 0, 7 to 15 long;
- text: at most 918 GSM-7 septets (6 segments of 153; an extension character
  counts 2) or, with any other character, 402 UTF-16 units (6 x 67);
- report_mask: an integer from 1 to 31 (any sum of the bits 1, 2, 4, 8, 16);
- report_url: an absolute http or https URL;
- throttling (no documented answer): HTTP 429 with Retry-After and a plain body.

It keeps each accepted message's report URL and mask, so
`delivery_report_url` can say what URL Cue would request for a status, and
requests it (a GET: the document says only that Cue "will call this URL")
when the message's fate is due and the mask includes that status. Cue has no
"expired" status: an expired message is reported Undelivered (2).
"""

from __future__ import annotations

import re
import secrets
from urllib.parse import urlsplit

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from smsdispatch.config.settings import Settings
from smsdispatch.simulators.common import Fate, Received, ReportCall, VendorSimulator

MESSAGES: dict[int, tuple[str, str]] = {
    1: ("Sent", "The message was successfully sent."),
    2: ("Queued", "The message has been queued for sending."),
    -1: ("System Error", "An unexpected error occurred on the server."),
    -2: ("Authentication Failed", "The username or password provided is incorrect."),
    -3: ("No Credit", "Your account has insufficient credit to send the message."),
    -4: ("Invalid Destination", "The recipient's phone number is invalid."),
    -5: ("Invalid Sender ID", "The 'from' parameter is invalid or not allowed for your account."),
    -6: (
        "Invalid Parameter",
        "A required parameter is missing or an invalid value was provided for a parameter.",
    ),
    -7: ("Duplicate Client Reference", "The client_reference provided has already been used."),
    -8: ("Message Too Long", "The message text exceeds the maximum allowed length."),
    -9: ("Blacklisted Destination", "The recipient's phone number is on a blacklist."),
    -10: ("Account Suspended", "Your account has been suspended."),
    -11: ("Feature Not Enabled", "The requested feature is not enabled for your account."),
    -12: ("Missing Required Parameter", "A parameter marked as 'Required' was not provided."),
    -13: ("Invalid Action", "The 'action' parameter is invalid."),
    -14: ("Invalid Character Set", "The 'charset' parameter is invalid."),
    -15: ("Invalid Report Mask", "The 'report_mask' parameter is invalid."),
    -16: ("Invalid Report URL", "The 'report_url' parameter is invalid."),
}

REQUIRED = ("action", "username", "password", "to", "from", "text")
DESTINATION = re.compile(r"[1-9][0-9]{6,14}")
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = frozenset("^{}\\[~]|€\f")
MAX_GSM_SEPTETS = 918
MAX_UCS2_UNITS = 402
ALL_REPORT_BITS = 31


def answer(status: int, details: str | None = None) -> JSONResponse:
    words, description = MESSAGES.get(status, ("Unknown", ""))  # for injected unknown codes
    return JSONResponse(
        {"status": status, "message": words, "details": description if details is None else details}
    )


def text_fits(text: str) -> bool:
    septets = 0
    for char in text:
        if char in GSM_BASIC:
            septets += 1
        elif char in GSM_EXTENSION:
            septets += 2
        else:
            return len(text.encode("utf-16-le")) // 2 <= MAX_UCS2_UNITS
    return septets <= MAX_GSM_SEPTETS


def report_mask_valid(value: str) -> bool:
    return value.isdigit() and 1 <= int(value) <= ALL_REPORT_BITS


def report_url_valid(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def message_refused(query: QueryParams) -> Response | None:
    """Destination (-4), sender (-5), text (-6 empty, -8 too long)."""
    to, sender, text = query["to"], query["from"], query["text"]
    if not DESTINATION.fullmatch(to):
        return answer(-4)
    if not sender:
        return answer(-5)
    if not text:
        return answer(-6, "text is empty")
    if not text_fits(text):
        return answer(-8)
    return None


def report_refused(query: QueryParams) -> Response | None:
    """report_mask (-15), report_url (-16)."""
    mask = query.get("report_mask")
    if mask is not None and not report_mask_valid(mask):
        return answer(-15)
    report_url = query.get("report_url")
    if report_url is not None and not report_url_valid(report_url):
        return answer(-16)
    return None


class CueSimulator(VendorSimulator):
    name = "cue"
    FINAL_WORDS = {"delivered": "1", "undelivered": "2", "expired": "2"}

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.references: set[str] = set()
        self.reports: dict[str, tuple[str, int]] = {}

    def reset(self) -> None:
        super().reset()
        self.references = set()
        self.reports = {}

    def routes(self) -> list[BaseRoute]:
        return [Route("/json", self.message_send, methods=["GET"])]

    async def message_send(self, request: Request) -> Response:
        if (fault := await self.begin()) is not None:
            return fault
        query = request.query_params
        if (refused := self.refusal(query)) is not None:
            return refused
        if (refused := self.admit(1)) is not None:
            return refused
        received = self.record(query)
        return await self.finish(answer(1, received.tracking_id))

    def refusal(self, query: QueryParams) -> Response | None:
        """Cue's answer refusing the request, the checks in the order of this
        module's docstring; None when it is accepted."""
        checks = (self.call_refused, message_refused, report_refused, self.reference_refused)
        for check in checks:
            if (refused := check(query)) is not None:
                return refused
        return None

    def call_refused(self, query: QueryParams) -> Response | None:
        """Required parameters (-12), action (-13), credentials (-2)."""
        if any(name not in query for name in REQUIRED):
            return answer(-12)
        if query["action"] != "message_send":
            return answer(-13)
        if not self.authenticated(query["username"], query["password"]):
            return answer(-2)
        return None

    def reference_refused(self, query: QueryParams) -> Response | None:
        """A client_reference already used (-7)."""
        reference = query.get("client_reference") or None
        if reference is not None and reference in self.references:
            return answer(-7)
        return None

    def record(self, query: QueryParams) -> Received:
        """Accept the message, and keep its reference and report request."""
        to, sender, text = query["to"], query["from"], query["text"]
        reference = query.get("client_reference") or None
        received = self.accept(to=to, sender=sender, text=text, reference=reference)
        if reference is not None:
            self.references.add(reference)
        report_url = query.get("report_url")
        if report_url is not None:
            # "Defaults to 19, only used with report_url".
            self.reports[received.tracking_id] = (report_url, int(query.get("report_mask") or 19))
        return received

    def authenticated(self, username: str, password: str) -> bool:
        cue = self.settings.cue
        user_ok = secrets.compare_digest(
            username.encode(), cue.username.get_secret_value().encode()
        )
        password_ok = secrets.compare_digest(
            password.encode(), cue.password.get_secret_value().encode()
        )
        return user_ok & password_ok

    def delivery_report_url(self, tracking_id: str, status: int) -> str | None:
        """The URL Cue would request for `status` (one report bit), or None
        when the message asked for no report or its mask leaves the bit out."""
        report = self.reports.get(tracking_id)
        if report is None or not report[1] & status:
            return None
        return report[0].replace("%d", str(status))

    def report_calls(self, received: Received, fate: Fate) -> list[ReportCall]:
        url = self.delivery_report_url(received.tracking_id, int(fate.word))
        return [ReportCall("GET", url)] if url else []

    def fault_response(self, code: str) -> Response:
        if code.startswith("http:"):
            status = int(code.removeprefix("http:"))
            return PlainTextResponse(f"simulated HTTP {status}", status_code=status)
        status = int(code)
        if status in (1, 2):
            # A documented acceptance the simulator does not record.
            return answer(status, self.new_tracking_id())
        return answer(status)

    def throttle_response(self) -> Response:
        return PlainTextResponse("Too Many Requests", status_code=429, headers={"Retry-After": "1"})
