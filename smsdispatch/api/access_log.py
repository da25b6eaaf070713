"""The API's access log: one line per request, with nothing secret or personal in it.

    smsdispatch.api.access: POST /reports/cue/<token> 200 3.1ms

What a line holds, and what it leaves out on purpose:
- the method, the path, the status and the time to the last byte of the answer;
- the report webhook's token is replaced (`/reports/<vendor>/<token>`,
  reports/urls.py): whoever reads the log could otherwise post reports;
- no query string: Cue's reports carry our query back, and a search may
  name a client reference; no body, no header (API keys travel in one),
  no client address (personal data where a person's phone calls the API).

uvicorn's own access log is off (`access_log=False` where the API is
served; its logger is held at WARNING in config/logs.py): it prints the
full path with the query string. Pure ASGI, like api/no_store.py, so a
report webhook pays one log call and no task group.

The line is at INFO on its own logger, which stands at INFO whatever the
root level (`smsdispatch --log-level WARNING api` still logs requests);
`API_ACCESS_LOG=false` turns it off.
"""

from __future__ import annotations

import logging
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("smsdispatch.api.access")

# Anywhere in the path: under a mount or a root_path the webhook's path has a prefix.
REPORT_PATH = re.compile(r"(/reports/[^/]*)/[^/]+")
REDACTED = r"\1/<token>"


def loggable_path(path: str) -> str:
    """The path as the log may show it: a report webhook's token replaced."""
    return REPORT_PATH.sub(REDACTED, path, count=1)


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        if log.level == logging.NOTSET:
            log.setLevel(logging.INFO)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before answering

        async def note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, note_status)
        finally:
            log.info(
                "%s %s %d %.1fms",
                scope["method"],
                loggable_path(scope["path"]),
                status,
                (time.perf_counter() - started) * 1000,
            )
