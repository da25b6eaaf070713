"""422 answers that can always be written, whatever the request held.

FastAPI's own handler echoes each invalid value back (`input`), and writing
that echo failed for some bodies: bytes that are not UTF-8 (a body sent as
text/csv, say), a number JSON reads as infinity (`1e400`), arrays nested
hundreds deep. The answer itself then failed: a 500 for a client's mistake.
Here, when the echo cannot be written, the errors go back without it.
"""

from __future__ import annotations

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
