"""`Cache-Control: no-store` on every answer: statuses change, so none may be cached.

Pure ASGI rather than `@app.middleware("http")`: Starlette's BaseHTTPMiddleware
runs each request through a task group and a memory stream, which cost the
delivery-report webhook about as much CPU as its own work (measured by
`python -m bench.reports`).
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class NoStore:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def no_store(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, no_store)
