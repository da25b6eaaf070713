"""Error answers: 422s that can always be written, and 503 while the database is away.

FastAPI's own handler echoes each invalid value back (`input`), and writing
that echo failed for some bodies: bytes that are not UTF-8 (a body sent as
text/csv, say), a number JSON reads as infinity (`1e400`), arrays nested
hundreds deep. The answer itself then failed: a 500 for a client's mistake.
Here, when the echo cannot be written, the errors go back without it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


def unprocessable(errors: Sequence[Any]) -> JSONResponse:
    return JSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        content={"detail": jsonable_encoder(errors)},
    )


async def validation_failed(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 for an invalid request; without the echoed values when
    they cannot be written as JSON."""
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    try:
        return unprocessable(errors)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return unprocessable([{k: v for k, v in e.items() if k != "input"} for e in errors])


log = logging.getLogger(__name__)

# How long a client (or a vendor posting a report) is asked to wait.
RETRY_AFTER_SECONDS = 5


async def database_away(request: Request, exc: Exception) -> JSONResponse:
    """503 while the database cannot be reached: nothing was stored, and the
    client, or the vendor posting a report, should try again shortly. A 500
    would read as our bug, and a vendor may not retry it."""
    # The route's template, not the path: a report's path holds its token.
    route = getattr(request.scope.get("route"), "path", "?")
    log.warning("%s %s: the database is unreachable (%s)", request.method, route,
                type(exc).__name__)  # fmt: skip
    return JSONResponse(
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        content={"detail": "the database is unreachable: nothing was stored; try again shortly"},
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def redis_away(request: Request, exc: Exception) -> JSONResponse:
    """503 while Redis cannot be reached by an endpoint that needs it (vendor
    pauses, routing's state): the request may not have taken effect (a
    resume lifts the pause in Redis before it writes the rows); try again."""
    route = getattr(request.scope.get("route"), "path", "?")
    log.warning("%s %s: Redis is unreachable (%s)", request.method, route, type(exc).__name__)
    return JSONResponse(
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        content={
            "detail": "Redis is unreachable: the request may not have taken effect; "
            "try again shortly"
        },
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )
