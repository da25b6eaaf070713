"""A TCP proxy the harness controls: a server made unreachable without touching it.

Placed between the workers (and beat, and the producer) and PostgreSQL, it
lets a test take the database away from this stack alone while the shared
server keeps serving everyone else. Three states:

- open: bytes flow both ways, as if the proxy were not there;
- cut: every open connection is reset and the listening socket is closed,
  so a new connection is refused (ECONNREFUSED): what a stopped server or a
  crashed host looks like;
- hang: connections are accepted and nothing is forwarded either way (TCP
  back-pressure holds the rest): what a network partition or a frozen host
  looks like; clients only notice through their own timeouts.

`restore()` returns to open. Bytes held by a hang are delivered then, as a
healed partition delivers what TCP kept retransmitting; a connection cut
stays closed.

No PyPI package does this in-process: Toxiproxy needs its own Go server
running, and the pure-Python forwarders have no cut or hang. The event loop
runs in a daemon thread; every public method is safe to call from any thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

T = TypeVar("T")

CHUNK = 65536


class ProxyState(StrEnum):
    OPEN = "open"  # forwarding
    CUT = "cut"  # connections reset, new ones refused
    HANG = "hang"  # connections accepted, nothing forwarded


@dataclass(eq=False)
class _Link:
    """One client connection and its upstream connection."""

    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    closed: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def abort(self) -> None:
        """Reset both sides at once (no FIN handshake: the peer sees a dead link)."""
        self.closed = True
        for writer in (self.client, self.upstream):
            if writer is not None:
                writer.transport.abort()


class TcpProxy:
    """Forward `listen_host:port` to `upstream_host:upstream_port` until told otherwise."""

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        *,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.host = listen_host
        self.port = listen_port
        self._state = ProxyState.OPEN
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="proxy")
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self._handlers: set[asyncio.Task[Any]] = set()  # one per accepted connection
        self._flowing: asyncio.Event | None = None
        self.accepted = 0  # connections accepted since start, for reports

    # -- control (any thread) ----------------------------------------------

    @property
    def state(self) -> ProxyState:
        return self._state

    @property
    def open_connections(self) -> int:
        return len(self._links)

    def start(self) -> TcpProxy:
        self._thread.start()
        self._call(self._start())
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def cut(self) -> None:
        """Reset every open connection and refuse new ones until `restore()`."""
        self._call(self._cut())

    def hang(self) -> None:
        """Accept connections but forward nothing, either way, until `restore()`."""
        self._call(self._hang())

    def restore(self) -> None:
        """Forward again: listen if cut, release held bytes if hung."""
        self._call(self._restore())

    @contextlib.contextmanager
    def down(self, mode: ProxyState = ProxyState.CUT) -> Iterator[None]:
        """The upstream unreachable inside the block (cut or hang), back after it."""
        if mode is ProxyState.HANG:
            self.hang()
        elif mode is ProxyState.CUT:
            self.cut()
        try:
            yield
        finally:
            self.restore()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    # -- the loop's side -----------------------------------------------------

    async def _start(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        await self._listen()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, self.host, self.port, reuse_address=True, backlog=512
        )
        # Port 0 picks a free port once; a restore listens on that same port.
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _close_listener(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _cut(self) -> None:
        self._state = ProxyState.CUT
        await self._close_listener()
        self._abort_all()
        assert self._flowing is not None
        self._flowing.set()  # wake pumps held by a hang: they see their link closed

    async def _hang(self) -> None:
        if self._state is ProxyState.CUT:
            await self._listen()
        self._state = ProxyState.HANG
        assert self._flowing is not None
        self._flowing.clear()

    async def _restore(self) -> None:
        if self._state is ProxyState.CUT:
            await self._listen()
        self._state = ProxyState.OPEN
        assert self._flowing is not None
        self._flowing.set()

    async def _shutdown(self) -> None:
        await self._close_listener()
        self._abort_all()
        if self._flowing is not None:
            self._flowing.set()
        tasks = [*self._handlers, *(t for link in self._links for t in link.tasks)]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _abort_all(self) -> None:
        for link in list(self._links):
            link.abort()
        self._links.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        assert handler is not None
        self._handlers.add(handler)
        try:
            await self._forward(reader, writer)
        except asyncio.CancelledError:
            # Cancelled by stop(): end normally, since Python 3.11's stream
            # server asks a finished handler for its exception and logs an
            # error when the handler was cancelled.
            return
        finally:
            self._handlers.discard(handler)

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        link = _Link(writer)
        self._links.add(link)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            # The upstream itself is down: the client sees what it would see.
            self._links.discard(link)
            link.abort()
            return
        if link.closed:  # cut while connecting
            up_writer.transport.abort()
            return
        link.upstream = up_writer
        link.tasks = [
            asyncio.create_task(self._pump(link, reader, up_writer)),
            asyncio.create_task(self._pump(link, up_reader, writer)),
        ]
        await asyncio.gather(*link.tasks, return_exceptions=True)
        self._links.discard(link)

    async def _pump(
        self, link: _Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        assert self._flowing is not None
        try:
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    break
                await self._flowing.wait()  # a hang holds the bytes here
                if link.closed:
                    return
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            link.abort()
            return
        # The peer closed: pass its FIN on after what was already written (an
        # abort could drop PostgreSQL's Terminate message); the other pump
        # then reads EOF from this same socket and ends too.
        if not link.closed:
            writer.close()
