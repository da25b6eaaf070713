"""The transport tells "never sent" from "may have been sent" truthfully."""

from __future__ import annotations

import asyncio
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest

from smsdispatch.providers.base import NOT_SENT_ERRORS
from smsdispatch.providers.transport import SEND_BY, SlotMissed, vendor_client
from tests.providers.contract import closed_port_url


def fetch(url: str, *, timeout: float = 2.0) -> httpx.Response:
    async def go() -> httpx.Response:
        async with vendor_client(
            connect_timeout=timeout, read_timeout=timeout, max_connections=5
        ) as client:
            return await client.post(url, json={"to": "+1"})

    return asyncio.run(go())


@contextmanager
def one_connection_server(then: Callable[[socket.socket], None]) -> Iterator[str]:
    """Accepts one connection, reads the whole request, then does `then`."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        then(conn)
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/send"
    finally:
        thread.join(5)
        listener.close()


@pytest.fixture
def server_that_reads_then_hangs_up() -> Iterator[str]:
    with one_connection_server(lambda conn: None) as url:
        yield url


@pytest.fixture
def server_that_reads_and_never_answers() -> Iterator[str]:
    done = threading.Event()

    def wait_for_teardown(conn: socket.socket) -> None:
        done.wait(10)

    with one_connection_server(wait_for_teardown) as url:
        yield url
        done.set()


@pytest.fixture
def server_that_answers_garbage() -> Iterator[str]:
    """Answers with a status line no HTTP parser accepts."""
    with one_connection_server(lambda conn: conn.sendall(b"NOT-HTTP garbage\r\n\r\n")) as url:
        yield url


def test_connection_refused_is_a_never_sent_error() -> None:
    with pytest.raises(httpx.ConnectError) as exc:
        fetch(closed_port_url())
    assert isinstance(exc.value, NOT_SENT_ERRORS)


def test_server_hanging_up_after_the_request_is_not_a_never_sent_error(
    server_that_reads_then_hangs_up: str,
) -> None:
    with pytest.raises(httpx.TransportError) as exc:
        fetch(server_that_reads_then_hangs_up)
    assert not isinstance(exc.value, NOT_SENT_ERRORS), type(exc.value)
    assert isinstance(exc.value, httpx.RemoteProtocolError)


def test_no_answer_after_the_request_is_a_read_timeout(
    server_that_reads_and_never_answers: str,
) -> None:
    with pytest.raises(httpx.ReadTimeout):
        fetch(server_that_reads_and_never_answers, timeout=0.3)


def test_a_malformed_answer_is_a_may_have_been_sent_error(server_that_answers_garbage: str) -> None:
    with pytest.raises(httpx.TransportError) as exc:
        fetch(server_that_answers_garbage)
    assert not isinstance(exc.value, NOT_SENT_ERRORS), type(exc.value)


def test_a_url_without_a_scheme_is_a_configuration_error_not_a_network_one() -> None:
    with pytest.raises(httpx.UnsupportedProtocol):
        fetch("ftp://127.0.0.1:1/send")


@contextmanager
def server_closing_idle_connections_as_a_request_arrives(idle_seconds: float) -> Iterator[str]:
    """A keep-alive server whose idle timer always wins the race: a request
    that arrives on a connection idle longer than `idle_seconds` is read and
    the connection closed without an answer, as when the server's timer fires
    while our request is on the wire (aio-libs/aiohttp#2682)."""

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            conn: socket.socket = self.request
            answered_at: float | None = None
            while data := conn.recv(65536):
                if b"\r\n\r\n" not in data:
                    continue  # the tests' requests arrive in one piece
                if answered_at is not None and time.monotonic() - answered_at > idle_seconds:
                    return  # closed under the request
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok"
                )
                answered_at = time.monotonic()

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/send"
    finally:
        server.shutdown()
        server.server_close()


def send_twice_with_a_pause(url: str, *, pause: float, keepalive_seconds: float) -> int:
    async def go() -> int:
        async with vendor_client(
            connect_timeout=2,
            read_timeout=2,
            max_connections=5,
            keepalive_seconds=keepalive_seconds,
        ) as client:
            await client.post(url, json={"to": "+1"})
            await asyncio.sleep(pause)
            return (await client.post(url, json={"to": "+1"})).status_code

    return asyncio.run(go())


def test_an_idle_connection_is_not_reused_after_the_keepalive_setting() -> None:
    with server_closing_idle_connections_as_a_request_arrives(0.3) as url:
        assert send_twice_with_a_pause(url, pause=0.5, keepalive_seconds=0.1) == 200


def test_reusing_a_connection_the_server_closes_is_the_ambiguous_error_the_setting_avoids() -> None:
    with (
        server_closing_idle_connections_as_a_request_arrives(0.3) as url,
        pytest.raises(httpx.RemoteProtocolError),
    ):
        send_twice_with_a_pause(url, pause=0.5, keepalive_seconds=5.0)


def test_a_request_past_its_send_by_moment_is_refused_before_a_byte_leaves() -> None:
    connections: list[int] = []
    with one_connection_server(lambda conn: connections.append(1)) as url:

        async def go() -> None:
            SEND_BY.set(time.monotonic() - 0.01)
            async with vendor_client(connect_timeout=1, read_timeout=1, max_connections=1) as c:
                await c.post(url, json={"to": "+1"})

        with pytest.raises(SlotMissed):
            asyncio.run(go())
        socket.create_connection(("127.0.0.1", int(url.split(":")[2].split("/")[0]))).close()
    assert connections == [1]  # only the closing probe above ever connected
