"""The TCP proxy: open forwards, cut resets and refuses, hang holds, restore heals."""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url

from chaos.proxy import ProxyState, TcpProxy


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(4096):
            self.request.sendall(data)


@pytest.fixture
def echo() -> Iterator[tuple[str, int]]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    yield str(host), int(port)
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(echo: tuple[str, int]) -> Iterator[TcpProxy]:
    with TcpProxy(*echo) as running:
        yield running


def connect(proxy: TcpProxy) -> socket.socket:
    return socket.create_connection((proxy.host, proxy.port), timeout=2)


def dead(sock: socket.socket) -> bool:
    """A reset connection: an error on send or recv, or an empty read."""
    try:
        return round_trip(sock) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True


def round_trip(sock: socket.socket, payload: bytes = b"ping") -> bytes:
    sock.sendall(payload)
    return sock.recv(4096)


def test_bytes_flow_through_an_open_proxy(proxy: TcpProxy) -> None:
    assert proxy.state is ProxyState.OPEN
    with connect(proxy) as sock:
        assert round_trip(sock) == b"ping"


def test_cut_resets_open_connections_and_refuses_new_ones(proxy: TcpProxy) -> None:
    with connect(proxy) as sock:
        assert round_trip(sock) == b"ping"
        proxy.cut()
        assert dead(sock)
    with pytest.raises(ConnectionRefusedError):
        connect(proxy)


def test_restore_after_a_cut_listens_on_the_same_port(proxy: TcpProxy) -> None:
    port = proxy.port
    proxy.cut()
    proxy.restore()
    assert proxy.port == port
    with connect(proxy) as sock:
        assert round_trip(sock) == b"ping"


def test_hang_accepts_connections_and_answers_nothing(proxy: TcpProxy) -> None:
    proxy.hang()
    with connect(proxy) as sock:
        sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            round_trip(sock)


def test_bytes_held_by_a_hang_arrive_after_restore(proxy: TcpProxy) -> None:
    with connect(proxy) as sock:
        proxy.hang()
        sock.sendall(b"held")
        proxy.restore()
        assert sock.recv(4096) == b"held"


@pytest.mark.postgres
def test_postgres_through_a_cut_proxy_fails_and_reconnects_after_restore(
    postgres_url: str,
) -> None:
    url = make_url(postgres_url)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        dsn = url.set(drivername="postgresql", host=proxy.host, port=proxy.port)
        conninfo = dsn.render_as_string(hide_password=False)
        with psycopg.connect(conninfo, connect_timeout=5) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
            proxy.cut()
            with pytest.raises(psycopg.OperationalError):
                conn.execute("SELECT 1")
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(conninfo, connect_timeout=5)
        proxy.restore()
        with psycopg.connect(conninfo, connect_timeout=5) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
