"""A client application's callback endpoint, on loopback, for the tests.

It records every POST (its raw body, its signature header, when it came)
and answers what the test's `answer` says: 200 by default, or a status with
headers, or after a delay (a receiver that hangs).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from smsdispatch.local.serve import BackgroundServer

SECRET = "callback-secret-for-tests"


@dataclass(frozen=True)
class Received:
    body: bytes
    signature: str
    at: float  # time.time() when it came in

    @property
    def document(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Receiver:
    root: str
    received: list[Received] = field(default_factory=list)
    # Called with the n-th POST's number (0-based) and its body: what to answer.
    answer: Callable[[int, dict[str, Any]], Reply] = lambda n, doc: Reply()
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _count: int = 0

    @property
    def url(self) -> str:
        return f"{self.root}/hooks/sms"

    def take(self, body: bytes, signature: str) -> Reply:
        with self._lock:
            n = self._count
            self._count += 1
        reply = self.answer(n, json.loads(body))
        if 200 <= reply.status < 300:
            with self._lock:
                self.received.append(Received(body, signature, time.time()))
        return reply

    def delivered(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.document for r in self.received]


def _app(receiver: Receiver) -> Starlette:
    async def hook(request: Request) -> Response:
        body = await request.body()
        reply = receiver.take(body, request.headers.get("Smsdispatch-Signature", ""))
        if reply.delay:
            await asyncio.sleep(reply.delay)
        return Response("ok" if reply.status < 300 else "no", reply.status, reply.headers)

    return Starlette(routes=[Route("/hooks/sms", hook, methods=["POST"])])


@contextmanager
def receiving(answer: Callable[[int, dict[str, Any]], Reply] | None = None) -> Iterator[Receiver]:
    receiver = Receiver(root="")
    if answer is not None:
        receiver.answer = answer
    server = BackgroundServer(_app(receiver))
    server.start()
    receiver.root = server.root
    try:
        yield receiver
    finally:
        server.stop()
