"""The HTTP transport under every adapter: httpx's API, aiohttp's connection pool.

Why not httpx's default transport: httpcore 1.0's connection pool does
O(connections x queued requests) work on every request (encode/httpcore#1035),
and a worker keeps dozens of requests in flight: with 50 in flight its cost per
request is several times aiohttp's (`python -m bench.transport`, figures in
BENCHMARKS.md).

Why not httpx-aiohttp's transport as it is: it maps every
`aiohttp.ClientConnectionError` to `httpx.ConnectTimeout`, including a
server that disconnects after our request left. The adapters resend a
ConnectTimeout as "never sent", so that mapping could send an SMS twice.
`VendorTransport` re-maps by the original aiohttp error, on the request and
on the body stream:

    never sent (safe to resend)    ConnectionTimeoutError -> httpx.ConnectTimeout
                                   ClientConnectorError   -> httpx.ConnectError
    may have been sent (ambiguous) SocketTimeoutError, ServerTimeoutError -> httpx.ReadTimeout
                                   ServerDisconnectedError -> httpx.RemoteProtocolError
                                   ClientPayloadError, ClientOSError -> httpx.ReadError
                                   anything else           -> httpx.NetworkError
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextvars import ContextVar

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

# Checked in order: the first class the aiohttp error is an instance of wins.
_REMAP: tuple[tuple[type[BaseException], type[httpx.TransportError]], ...] = (
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
    (aiohttp.ClientConnectorError, httpx.ConnectError),
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.ClientPayloadError, httpx.ReadError),
    (aiohttp.ClientOSError, httpx.ReadError),
)


def remap(exc: httpx.TransportError) -> httpx.TransportError:
    """The httpx error that says truthfully whether the request may have left."""
    cause = exc.__cause__
    if cause is None or isinstance(exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError):
        return exc  # raised by httpx itself, or a bad URL: our configuration, not the network
    for aiohttp_type, httpx_type in _REMAP:
        if isinstance(cause, aiohttp_type):
            return httpx_type(str(exc) or type(cause).__name__)
    return httpx.NetworkError(str(exc) or type(cause).__name__)


class _RemappedStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream) -> None:
        self._inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                yield chunk
        except httpx.TransportError as exc:
            raise remap(exc) from exc.__cause__
        except aiohttp.ClientError as exc:
            raise httpx.ReadError(type(exc).__name__) from None

    async def aclose(self) -> None:
        await self._inner.aclose()


# When (time.monotonic()) the request being sent by this task must leave at
# the latest: set by the limiter gate from the slot it booked (limits/gate.py),
# read here, at the last point before aiohttp writes the request. A process
# slowed down between the gate and here (a saturated loop) would otherwise
# send late requests together with the on-time ones booked after them.
SEND_BY: ContextVar[float | None] = ContextVar("smsdispatch_send_by", default=None)


class SlotMissed(httpx.TransportError):
    """Raised before a byte left: the request is too late for its limiter slot."""


class VendorTransport(AiohttpTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        send_by = SEND_BY.get()
        late = time.monotonic() - send_by if send_by is not None else 0.0
        if late > 0:
            raise SlotMissed(f"{late:.3f}s past the limiter slot's allowance", request=request)
        try:
            response = await super().handle_async_request(request)
        except httpx.TransportError as exc:
            raise remap(exc) from exc.__cause__
        except aiohttp.ClientError as exc:
            # Errors httpx-aiohttp leaves unmapped (a malformed status line or
            # headers) come after the request left. Only the type is kept: the
            # message may carry the URL, and Cue's holds its credentials.
            raise httpx.RemoteProtocolError(type(exc).__name__) from None
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_RemappedStream(response.stream),
            request=request,
            extensions=response.extensions,
        )


def vendor_client(
    *,
    connect_timeout: float,
    read_timeout: float,
    max_connections: int,
    keepalive_seconds: float = 2.0,
) -> httpx.AsyncClient:
    """The client every worker process sends with (one per process, after fork).

    `keepalive_seconds`: a connection idle longer than this is closed, never
    reused. A server closes idle connections on its own timer (uvicorn and
    Node after 5 s, httpx's and aiohttp's default is also 5 s); a request
    written on a connection at the moment the server closes it fails with
    ServerDisconnectedError (aio-libs/aiohttp#2682, #9138), which we must
    read as "may have been sent", so the message ends `unknown`. Expiring
    our side first, well before any common server timeout, removes that
    race; the price is a new TCP connection after a quiet spell.
    """
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=keepalive_seconds,
    )
    return httpx.AsyncClient(
        timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
        limits=limits,
        transport=VendorTransport(limits=limits),
    )
