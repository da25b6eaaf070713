"""Skycore simulator: POST /API (mounted at /skycore), `"action": "sendsms"`.

What the document states is simulated as stated: the x-api-key header, the
case-insensitive action, the mandatory message-text/to/from, the Success and
Failure bodies, E111 "Invalid Sender." for a "from" that is not a short code
or long code of digits. What it leaves out is our assumption, answered as a
Failure body carrying the HTTP status as its "error-code":

    missing or wrong x-api-key            HTTP 401, error-code "401"
    not JSON, missing field, bad action   HTTP 400, error-code "400"
    "to" not digits ('+' or '00' prefix)  HTTP 400, error-code "400"
    throttled (the ceiling)               HTTP 429, error-code "429", Retry-After

An injected fault (`Control.fail_with`) is a Failure body with that
error-code: on HTTP 200, on the HTTP status it names ("503"), or on the status
after an '@' ("E200@503": an undocumented code on a server error).

"Enforce Campaign Check" is off (campaign-ref is optional). Postbacks go to
the account's postback URL (`Control.postback_url`, an account setting at
Skycore, not a request field) as the JSON providers/skycore.py reads:
{"tracking-id", "status", "error-code"?}; one not answered 200 is tried again
every `report_retry_seconds` (the vendor's 5 minutes), up to 5 more times.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from smsdispatch.simulators.common import Fate, Received, ReportCall, VendorSimulator

ERROR_INFO: dict[str, str] = {
    "E111": "Invalid Sender.",
    # Not documented: the texts our simulator gives its HTTP-level answers.
    "400": "Invalid request.",
    "401": "Invalid API key.",
    "403": "Access denied.",
    "429": "Too many requests.",
    "500": "Internal error.",
    "502": "Bad gateway.",
    "503": "Service unavailable.",
    "504": "Gateway timeout.",
}

REQUIRED = ("action", "message-text", "to", "from")


def failure(
    code: str, *, to: str = "", status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """The document's Failure body."""
    body = {
        "status": "Failure",
        "error-code": code,
        "error-info": ERROR_INFO.get(code, "Simulated error."),
        "to": to,
    }
    return JSONResponse(body, status_code=status, headers=headers)


def is_number(value: str) -> bool:
    return value.isascii() and value.isdigit()


class SkycoreSimulator(VendorSimulator):
    name = "skycore"
    FINAL_WORDS = {"delivered": "DELIVERED", "undelivered": "UNDELIVERED", "expired": "EXPIRED"}
    report_retries = 5

    def report_calls(self, received: Received, fate: Fate) -> list[ReportCall]:
        url = self.state.control.postback_url
        if not url:
            return []
        body = {"tracking-id": received.tracking_id, "status": fate.word}
        return [ReportCall("POST", url, json=body)]

    def routes(self) -> list[BaseRoute]:
        return [Route("/API", self.send_sms, methods=["POST"])]

    async def send_sms(self, request: Request) -> Response:
        if (fault := await self.begin()) is not None:
            return fault
        key = request.headers.get("x-api-key")
        expected = self.settings.skycore.api_key.get_secret_value()
        if not key or not secrets.compare_digest(key.encode(), expected.encode()):
            return failure("401", status=401)
        try:
            body: Any = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return failure("400", status=400)
        if not isinstance(body, dict):
            return failure("400", status=400)
        if any(not isinstance(body.get(f), str) or not body[f] for f in REQUIRED):
            echo = body.get("to")
            return failure("400", to=echo if isinstance(echo, str) else "", status=400)
        to: str = body["to"]
        sender: str = body["from"]
        if body["action"].casefold() != "sendsms" or not _optional_fields_valid(body):
            return failure("400", to=to, status=400)
        if not is_number(to) or to.startswith("00"):
            return failure("400", to=to, status=400)
        if not is_number(sender):
            return failure("E111", to=to)
        if (refused := self.admit(1)) is not None:
            return refused
        received = self.accept(to=to, sender=sender, text=body["message-text"], reference=None)
        return await self.finish(
            JSONResponse(
                {
                    "status": "Success",
                    "tracking-id": received.tracking_id,
                    "to": to,
                    "from": sender,
                    "status-details": "SMS request accepted and queued for delivery",
                }
            )
        )

    def fault_response(self, code: str) -> Response:
        if code.startswith("http:"):
            status = int(code.removeprefix("http:"))
            return PlainTextResponse(f"HTTP {status}", status_code=status)
        if code == "429":
            return self.throttle_response()
        if "@" in code:
            error_code, _, on_status = code.partition("@")
            return failure(error_code, status=int(on_status))
        if is_number(code) and 400 <= int(code) <= 599:
            return failure(code, status=int(code))
        return failure(code)

    def throttle_response(self) -> Response:
        # The document describes no throttle answer: HTTP 429 with a Failure
        # body, as a careful vendor would.
        return failure("429", status=429, headers={"Retry-After": "1"})


def _optional_fields_valid(body: dict[str, Any]) -> bool:
    """from-mask and campaign-ref are strings, click-tracking a boolean."""
    for field in ("from-mask", "campaign-ref"):
        if field in body and not isinstance(body[field], str):
            return False
    return "click-tracking" not in body or isinstance(body["click-tracking"], bool)
