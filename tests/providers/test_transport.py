"""The transport tells "never sent" from "may have been sent" truthfully."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest

from providers.base import NOT_SENT_ERRORS
from providers.transport import vendor_client
from tests.providers.contract import closed_port_url


def fetch(url: str, *, timeout: float = 2.0) -> httpx.Response:
    async def go() -> httpx.Response:
        async with vendor_client(
            connect_timeout=timeout, read_timeout=timeout, max_connections=5
        ) as client:
            return await client.post(url, json={"to": "+1"})

    return asyncio.run(go())


@pytest.fixture
def server_that_reads_then_hangs_up() -> Iterator[str]:
    """Accepts, reads the whole request, and closes without answering."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}/send"
    thread.join(5)
    listener.close()


@pytest.fixture
def server_that_reads_and_never_answers() -> Iterator[str]:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    done = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        done.wait(10)
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}/send"
    done.set()
    thread.join(5)
    listener.close()


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


@pytest.fixture
def server_that_answers_garbage() -> Iterator[str]:
    """Reads the request, then answers with a status line no HTTP parser accepts."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(b"NOT-HTTP garbage\r\n\r\n")
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}/send"
    thread.join(5)
    listener.close()


def test_a_malformed_answer_is_a_may_have_been_sent_error(server_that_answers_garbage: str) -> None:
    with pytest.raises(httpx.TransportError) as exc:
        fetch(server_that_answers_garbage)
    assert not isinstance(exc.value, NOT_SENT_ERRORS), type(exc.value)


def test_a_url_without_a_scheme_is_a_configuration_error_not_a_network_one() -> None:
    with pytest.raises(httpx.UnsupportedProtocol):
        fetch("ftp://127.0.0.1:1/send")
