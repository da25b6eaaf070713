"""Messangi simulator: the Raven Outbound SMS API as its document describes it.

    POST /raven/v2/messages         one message
    POST /raven/v3/messages/batch   one text (with {0} placeholders) to many recipients
                                    (also at /v3/messages/batch: the document's path
                                    is relative to nothing)

Both want `Authorization: Bearer <api key>` and a JSON body. The document
names no HTTP error codes; this simulator answers what the adapter's reading
expects (401 bad key, 400 malformed request, 429 throttled), each with the
`{"meta": {"timestamp", "transactionId", "explain"}}` body the batch answer
documents. A text over 1600 characters is a 200 with data.status ERROR and
the documented "Text exceeds the limit of allowed segments".

A message sent with `requestDR: true` and `callbacks` gets its final status
POSTed as JSON to each callback URL when its fate is due:
{"id", "externalId"?, "status", "date"} (the document's "Callback URL (MT)"
section is not in it; this is the form providers/messangi.py reads).
"""

from __future__ import annotations

import json
import re
import secrets
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from smsdispatch.config.settings import Settings
from smsdispatch.simulators.common import Fate, Received, ReportCall, VendorSimulator

# "E.164 format ('+' and a country code). The plus sign prefix of the format is
# optional": up to 15 digits, country code first. We ask for at least 7 digits,
# the shortest numbers in use, so "+12" is not taken for a phone.
E164 = re.compile(r"\+?[1-9][0-9]{6,14}")
PLACEHOLDER = re.compile(r"\{(\d+)\}")
MAX_TEXT_CHARS = 1600
SEGMENTS_EXCEEDED = "Text exceeds the limit of allowed segments"
# Status words a send answer may carry with an id: the message is in flight.
IN_FLIGHT = frozenset({"QUEUE", "DEQUEUED", "ACCEPTD", "ENROUTE", "SENT"})


class BadRequest(Exception):
    """The request breaks the documented shape: answered 400 with its explain."""


class MessangiSimulator(VendorSimulator):
    name = "messangi"
    FINAL_WORDS = {"delivered": "DELIVRD", "undelivered": "UNDELIV", "expired": "EXPIRED"}

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        # tracking id -> (callback URLs, externalId), for messages with requestDR.
        self.callbacks: dict[str, tuple[list[str], str | None]] = {}

    def reset(self) -> None:
        super().reset()
        self.callbacks = {}

    def _remember_callbacks(self, body: dict[str, Any], tracking_id: str) -> None:
        """ "To notify the status of the message delivery through a callback,
        the requestDR must be true." """
        urls = [u.strip() for u in str(body.get("callbacks") or "").split(",") if u.strip()]
        if body.get("requestDR") is True and urls:
            external = body.get("externalId")
            self.callbacks[tracking_id] = (urls, external if isinstance(external, str) else None)

    def report_calls(self, received: Received, fate: Fate) -> list[ReportCall]:
        urls, external = self.callbacks.get(received.tracking_id, ([], None))
        body: dict[str, Any] = {
            "id": received.tracking_id,
            "status": fate.word,
            "date": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
        if external is not None:
            body["externalId"] = external
        return [ReportCall("POST", url, json=body) for url in urls]

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/raven/v2/messages", self.send_one, methods=["POST"]),
            Route("/raven/v3/messages/batch", self.send_batch, methods=["POST"]),
            # The document gives the batch path relative to nothing: the other
            # reading, off the host, is served too (MESSANGI__BATCH_URL picks one).
            Route("/v3/messages/batch", self.send_batch, methods=["POST"]),
        ]

    # -- endpoints ------------------------------------------------------------

    async def send_one(self, request: Request) -> Response:
        if (fault := await self.begin()) is not None:
            return fault
        if not self._authorized(request):
            return self._error(401, "Unauthorized: invalid API key")
        try:
            body = await _json_body(request)
            sender, text = _required(body, "from"), _required(body, "text")
            to = _required(body, "to")
            _check_options(body)
            if not E164.fullmatch(to):
                raise BadRequest("Invalid destination address: to must be in E.164 format")
        except BadRequest as exc:
            return self._error(400, str(exc))
        data = _echo(body, sender, text)
        data["to"] = to
        if len(text) > MAX_TEXT_CHARS:
            data.update(id=self.new_tracking_id(), status="ERROR")
            return JSONResponse(_answer(data, explain=SEGMENTS_EXCEEDED))
        if (refused := self.admit(1)) is not None:
            return refused
        received = self.accept(to=to, sender=sender, text=text, reference=body.get("externalId"))
        self._remember_callbacks(body, received.tracking_id)
        data.update(id=received.tracking_id, status="QUEUE")
        return await self.finish(JSONResponse(_answer(data)))

    async def send_batch(self, request: Request) -> Response:
        if (fault := await self.begin()) is not None:
            return fault
        if not self._authorized(request):
            return self._error(401, "Unauthorized: invalid API key")
        try:
            body = await _json_body(request)
            sender, text = _required(body, "from"), _required(body, "text")
            recipients = _recipients(body)
            _check_options(body)
        except BadRequest as exc:
            return self._error(400, str(exc))
        data = _echo(body, sender, text)
        if len(text) > MAX_TEXT_CHARS:
            data.update(ids=[], status="ERROR")
            return JSONResponse(_answer(data, explain=SEGMENTS_EXCEEDED))
        valid = [(to, params) for to, params in recipients if E164.fullmatch(to)]
        if (refused := self.admit(len(valid))) is not None:
            return refused
        ids = []
        for to, params in valid:
            # A batch has one externalId for all its messages: recorded per
            # message it would count every batch as duplicates in the stats,
            # so batch messages carry no reference (duplicates still show as
            # repeated recipient and text).
            received = self.accept(
                to=to, sender=sender, text=_fill(text, params), reference=None, batch=True
            )
            self._remember_callbacks(body, received.tracking_id)
            ids.append({"id": received.tracking_id, "mobile": to})
        data.update(ids=ids, status="QUEUE")
        if len(valid) < len(recipients):
            data["invalidNumber"] = [to for to, _ in recipients if not E164.fullmatch(to)]
        return await self.finish(JSONResponse(_answer(data)))

    # -- answers ----------------------------------------------------------------

    def fault_response(self, code: str) -> Response:
        """`http:NNN`: a bare HTTP NNN. A number ("401", "503"): that HTTP
        status with the vendor's error body. A status word: a 200 send answer
        carrying it ("ERROR" with the documented segments text; an in-flight
        word with an id, recorded nowhere: it is an injected answer)."""
        if code.startswith("http:"):
            status = int(code.removeprefix("http:"))
            return Response(f"simulated HTTP {status}", status_code=status, media_type="text/plain")
        if code == "429":
            return self.throttle_response()
        if code.isdigit():
            return self._error(int(code), f"simulated {code}")
        data: dict[str, Any] = {"from": "", "text": "", "to": "", "type": "MT", "status": code}
        if code in IN_FLIGHT:
            data["id"] = self.new_tracking_id()
        explain = SEGMENTS_EXCEEDED if code == "ERROR" else None
        return JSONResponse(_answer(data, explain=explain))

    def throttle_response(self) -> Response:
        # Not documented: a 429 with Retry-After, as HTTP APIs commonly answer.
        return self._error(429, "Too many requests", headers={"Retry-After": "1"})

    def _error(self, status: int, explain: str, headers: dict[str, str] | None = None) -> Response:
        return JSONResponse({"meta": _meta(explain)}, status_code=status, headers=headers)

    def _authorized(self, request: Request) -> bool:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        expected = self.settings.messangi.api_key.get_secret_value()
        return (
            scheme.lower() == "bearer"
            and bool(expected)
            and secrets.compare_digest(key.strip().encode(), expected.encode())
        )


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest("Malformed JSON body") from None
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object")
    return body


def _required(body: dict[str, Any], field: str) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{field} is required")
    return value


def _check_options(body: dict[str, Any]) -> None:
    if body.get("type", "MT") != "MT":
        raise BadRequest("type must be MT")
    if not isinstance(body.get("requestDR", False), bool):
        raise BadRequest("requestDR must be true or false")
    for field in ("callbacks", "externalId", "clientId", "connection", "email"):
        if not isinstance(body.get(field, ""), str):
            raise BadRequest(f"{field} must be a string")


def _recipients(body: dict[str, Any]) -> list[tuple[str, list[Any]]]:
    items = body.get("to")
    if not isinstance(items, list) or not items:
        raise BadRequest("to is required: an array of destinations")
    recipients = []
    for item in items:
        # The parameter table names the key to.to; the document's own example
        # writes "to:" (with the colon). Accept both, as a lenient server would.
        to = item.get("to", item.get("to:")) if isinstance(item, dict) else None
        if not isinstance(to, str) or not to:
            raise BadRequest("to.to is required")
        params = item.get("params")
        if not isinstance(params, list):
            raise BadRequest("to.params is required: an array (empty without placeholders)")
        recipients.append((to, params))
    return recipients


def _fill(text: str, params: list[Any]) -> str:
    """The text with {0}, {1}... replaced by this recipient's params."""
    if not params or "{" not in text:
        return text

    def value(match: re.Match[str]) -> str:
        index = int(match.group(1))
        return str(params[index]) if index < len(params) else match.group(0)

    return PLACEHOLDER.sub(value, text)


def _echo(body: dict[str, Any], sender: str, text: str) -> dict[str, Any]:
    """The request's fields as the answer's data repeats them."""
    data: dict[str, Any] = {
        "from": sender,
        "text": text,
        "requestDR": body.get("requestDR", False),
        "type": "MT",
        "owner": "owner@example.com",
        "operator": "operator@example.com",
        "date": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }
    for field in ("callbacks", "externalId", "clientId", "connection", "email"):
        if field in body:
            data[field] = body[field]
    return data


def _meta(explain: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "timestamp": int(time.time() * 1000),
        "transactionId": str(uuid.uuid4()),
    }
    if explain is not None:
        meta["explain"] = explain
    return meta


def _answer(data: dict[str, Any], *, explain: str | None = None) -> dict[str, Any]:
    return {"meta": _meta(explain), "data": data}
