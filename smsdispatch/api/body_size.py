"""A request-size limit enforced on the body as it streams in.

Content-Length can be absent (chunked uploads) or wrong, so the limit counts
the bytes actually received and answers 413 as soon as they exceed it.
"""

from __future__ import annotations

import re

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smsdispatch.vocabulary.errors import InputError


class BodyTooLarge(InputError):
    """Raised from inside `receive` so the app stops reading: answered 413 here."""


class MaxBodySize:
    """`max_bytes` for every request; paths matching an `uploads` pattern
    (a campaign's recipient list) get `max_upload_bytes` instead."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        uploads: re.Pattern[str] | None = None,
        max_upload_bytes: int = 0,
    ) -> None:
        self.app = app
        self.default_bytes = max_bytes
        self.uploads = uploads
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.default_bytes
        if self.uploads is not None and self.uploads.fullmatch(scope.get("path", "")):
            limit = self.max_upload_bytes
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(limit, scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge
            return message

        try:
            await self.app(scope, counting_receive, send)
        except BodyTooLarge:
            await self._refuse(limit, scope, receive, send)

    async def _refuse(self, limit: int, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse(
            {"detail": f"request body larger than {limit} bytes"}, status_code=413
        )
        await response(scope, receive, send)
