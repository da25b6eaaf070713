"""SMSBuddy simulator: the document's send, JSON send and balance endpoints.

Mounted at /smsbuddy; the real base URL is https://thesmsbuddy.com/api/v1, so
the routes carry /api/v1. The document's curl examples drop the `v1`; both
forms of the send endpoints are served. The balance check is only at
/api/sms/balance/check: the document never gives it with `v1`.

Errors are answered with the code as the HTTP status and the body
{"status": "<code>", "message": "<the document's text>"}. The documented
ceiling (1000 SMS/minute) is enforced by default with the documented 429.
Not simulated: quiet hours (451) and balance consumption (409) happen only when
injected; scheduling is accepted and sent at once; OTP and sender-id endpoints.

Delivery reports, in the form providers/smsbuddy.py reads (the document says
only that `dlr_url` receives the status and `custom`): a form POST to the
dlr_url with `id`, `status` (DELIVRD, UNDELIV, EXPIRED) and the message's
`custom` when it had one. The status query, `GET .../sms/send?key=&id=`,
answers the send answer's shape with the record's current status
(AWAITING-DLR until the message's fate is due).
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from smsdispatch.config.settings import Settings
from smsdispatch.simulators.common import (
    Ceiling,
    Control,
    Fate,
    Received,
    ReportCall,
    VendorSimulator,
)

# The document's "Error Codes" table, word for word.
ERRORS: dict[str, str] = {
    "400": "Incomplete request - Any one of mandatory field missing",
    "422": "Invalid Service Type",
    "401": "Invalid API Key",
    "412": "Invalid Sender ID",
    "451": "Sorry, this service is allowed only between 10AM & 9PM - Monday to Sunday. "
    "Request you to kindly try scheduling the campaign during the said timings. Thank you.",
    "406": "No Valid Numbers",
    "416": "Service Not Available",
    "409": "Insufficient Balance",
    "429": "Too many requests received. Your threshold value is 1000 SMS/minute. "
    "Please contact support.",
    "500": "There is an issue at our end. Please submit your request again.",
}

SERVICE_TYPES = frozenset({"1", "2", "3"})  # transactional, promotional, transscrub
# The sample balance of the document.
DEFAULT_BALANCE: dict[str, int] = {"trans": 100, "promo": 0, "transscrub": 50}

# "Phone number ... with country prefix". The document's example sends the
# ten digits "98xxxxxxxx" and gets back "9198xxxxxxxx": ten digits are taken
# as an Indian number; otherwise 11-15 digits, international without '+'.
_NUMBER = re.compile(r"\d{10,15}")
# Registered sender ids: alphanumeric, at most 11 characters (DLT headers are 6).
_SENDER = re.compile(r"[A-Za-z0-9]{1,11}")


@dataclass(frozen=True, slots=True)
class ReportRequest:
    """Where the vendor would post the delivery report of one message."""

    dlr_url: str
    custom: str | None


class SMSBuddySimulator(VendorSimulator):
    name = "smsbuddy"
    FINAL_WORDS = {"delivered": "DELIVRD", "undelivered": "UNDELIV", "expired": "EXPIRED"}

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.balance: dict[str, int] = dict(DEFAULT_BALANCE)
        # tracking id -> report request, for messages sent with a dlr_url.
        self.reports: dict[str, ReportRequest] = {}
        self.sent: dict[str, Received] = {}  # tracking id -> message, for the status query

    def default_control(self) -> Control:
        # "Your threshold value is 1000 SMS/minute."
        return Control(ceiling=Ceiling(count=1000, per_seconds=60))

    def reset(self) -> None:
        super().reset()
        self.balance = dict(DEFAULT_BALANCE)
        self.reports = {}
        self.sent = {}

    def routes(self) -> list[BaseRoute]:
        routes: list[BaseRoute] = []
        for prefix in ("/api/v1", "/api"):
            routes += [
                Route(f"{prefix}/sms/send", self.send_form, methods=["POST"]),
                Route(f"{prefix}/sms/send", self.query_status, methods=["GET"]),
                Route(f"{prefix}/sms/send/json", self.send_json, methods=["POST"]),
            ]
        # The balance check's heading and curl example agree: no `v1`.
        routes.append(Route("/api/sms/balance/check", self.check_balance, methods=["POST"]))
        return routes

    def fault_response(self, code: str) -> Response:
        if code.startswith("http:"):
            status = int(code.removeprefix("http:"))
            return PlainTextResponse(f"simulated HTTP {status}", status_code=status)
        message = ERRORS.get(code, "simulated error")
        status = int(code) if code.isdigit() and 400 <= int(code) <= 599 else 500
        return JSONResponse({"status": code, "message": message}, status_code=status)

    def throttle_response(self) -> Response:
        return self.fault_response("429")

    def report_calls(self, received: Received, fate: Fate) -> list[ReportCall]:
        report = self.reports.get(received.tracking_id)
        if report is None:
            return []
        form = {"id": received.tracking_id, "status": fate.word}
        if report.custom is not None:
            form["custom"] = report.custom
        return [ReportCall("POST", report.dlr_url, data=form)]

    # -- endpoints -----------------------------------------------------------

    async def send_form(self, request: Request) -> Response:
        if (fault := await self.begin()) is not None:
            return fault
        fields = await _form(request)
        if fields is None:
            return self.fault_response("400")
        if (refused := self._check_root(fields)) is not None:
            return refused
        text, to = fields.get("message", ""), fields.get("to", "")
        if not text or not to or (fields.get("schedule") == "1" and not fields.get("time")):
            return self.fault_response("400")
        # "multiple numbers can be separated by comma": one record per number.
        numbers = [n for n in (_number(part.strip()) for part in to.split(",")) if n]
        if not numbers:
            return self.fault_response("406")
        if (refused := self.admit(len(numbers))) is not None:
            return refused
        custom = fields.get("custom") or None
        batch = len(numbers) > 1
        data = [self._accept(number, fields, text, custom, batch) for number in numbers]
        return await self.finish(_accepted(data))

    async def send_json(self, request: Request) -> Response:
        if (fault := await self.begin()) is not None:
            return fault
        parsed = _json_send(await request.body())
        if parsed is None:
            return self.fault_response("400")
        root, nodes = parsed
        if (refused := self._check_root(root)) is not None:
            return refused
        valid = _valid_nodes(root, nodes)
        if valid is None:
            return self.fault_response("400")
        if not valid:
            return self.fault_response("406")
        if (refused := self.admit(len(valid))) is not None:
            return refused
        data = [self._accept_node(number, root, text, refid) for number, text, refid in valid]
        return await self.finish(_accepted(data))

    async def query_status(self, request: Request) -> Response:
        """GET by the id a send answer gave: that message's record, now."""
        key, tracking_id = request.query_params.get("key"), request.query_params.get("id")
        if not key or not tracking_id:
            return self.fault_response("400")
        if not self._key_ok(key):
            return self.fault_response("401")
        sent = self.sent.get(tracking_id)
        if sent is None:
            return JSONResponse({"status": "200", "message": "0 records", "data": []})
        fate = self.fate(tracking_id)
        units = _units(sent.text)
        record = {
            "id": tracking_id,
            "mobile": sent.to,
            "status": fate.word if fate else "AWAITING-DLR",
            "unit": units,
            "length": len(sent.text),
            "charge": units,
        }
        return JSONResponse({"status": "200", "message": "1 records", "data": [record]})

    async def check_balance(self, request: Request) -> Response:
        fields = await _form(request)
        if fields is None or not fields.get("key"):
            return self.fault_response("400")
        if not self._key_ok(fields["key"]):
            return self.fault_response("401")
        return JSONResponse({"status": "200", "data": self.balance})

    # -- helpers -------------------------------------------------------------

    def _check_root(self, fields: dict[str, Any]) -> Response | None:
        """Key, service type and sender, in the order the vendor would check them."""
        key, service_type = fields.get("key"), fields.get("type")
        if not key or not service_type:
            return self.fault_response("400")
        if not self._key_ok(key):
            return self.fault_response("401")
        if service_type not in SERVICE_TYPES:
            return self.fault_response("422")
        if not _SENDER.fullmatch(fields.get("sender") or ""):
            return self.fault_response("412")
        return None

    def _accept_node(
        self, number: str, root: dict[str, str], text: str, refid: Any
    ) -> dict[str, Any]:
        """A JSON node's record: the form's record, with the node's refid echoed."""
        reference = str(refid) if refid not in ("", None) else None
        record = self._accept(number, root, text, reference, True)
        # The document's example echoes refid "2" as the number 2.
        record["refid"] = (
            int(refid) if isinstance(refid, str) and refid.isascii() and refid.isdigit() else refid
        )
        return record

    def _key_ok(self, key: str) -> bool:
        expected = self.settings.smsbuddy.key.get_secret_value()
        return bool(expected) and secrets.compare_digest(key.encode(), expected.encode())

    def _accept(
        self, number: str, fields: dict[str, Any], text: str, reference: str | None, batch: bool
    ) -> dict[str, Any]:
        received = self.accept(
            to=number, sender=fields["sender"], text=text, reference=reference, batch=batch
        )
        self.sent[received.tracking_id] = received
        if dlr_url := fields.get("dlr_url"):
            # Only `custom` comes back: a JSON node's refid is not a report field.
            self.reports[received.tracking_id] = ReportRequest(
                dlr_url, fields.get("custom") or None
            )
        units = _units(text)
        return {
            "id": received.tracking_id,
            "mobile": number,
            "status": "AWAITING-DLR",
            "unit": units,
            "length": len(text),
            "charge": units,
        }


async def _form(request: Request) -> dict[str, str] | None:
    """The urlencoded body (last value wins), or None when it is not one."""
    try:
        return dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
    except (UnicodeDecodeError, ValueError):
        return None


def _json_send(raw: bytes) -> tuple[dict[str, str], list[Any]] | None:
    """The JSON send's root (its text and number fields) and its nodes, or
    None when the body is not one."""
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    root = body.get("root") if isinstance(body, dict) else None
    nodes = body.get("nodes") if isinstance(body, dict) else None
    if not isinstance(root, dict) or not isinstance(nodes, list) or not nodes:
        return None
    return {k: str(v) for k, v in root.items() if isinstance(v, str | int)}, nodes


def _valid_nodes(root: dict[str, str], nodes: list[Any]) -> list[tuple[str, str, Any]] | None:
    """(number, text, refid) of each node with a valid number, or None when
    a node is malformed. Nodes inherit the root's message; an invalid number
    drops its node."""
    valid: list[tuple[str, str, Any]] = []
    for node in nodes:
        if not isinstance(node, dict):
            return None
        text = node.get("message") or root.get("message")
        if not isinstance(text, str) or not text:
            return None
        to = node.get("to")
        number = _number(str(to) if isinstance(to, int) else to)
        if number:
            valid.append((number, text, node.get("refid", "")))
    return valid


def _number(value: object) -> str | None:
    """The number as the vendor records it, or None when it is not valid."""
    if not isinstance(value, str) or not _NUMBER.fullmatch(value):
        return None
    return "91" + value if len(value) == 10 else value


def _units(text: str) -> int:
    single, part = (160, 153) if text.isascii() else (70, 67)
    return 1 if len(text) <= single else -(-len(text) // part)


def _accepted(data: list[dict[str, Any]]) -> Response:
    return JSONResponse(
        {
            "status": "200",
            "charges": sum(record["charge"] for record in data),
            "message": f"{len(data)} numbers accepted for delivery.",
            "data": data,
        }
    )
