"""/healthz and /readyz: alive without asking anything; ready only when the
database answers at the migrations' head and Redis answers, and a probe
answers in time even while the database hangs."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from chaos.proxy import TcpProxy
from smsdispatch.api.health import PROBE_TIMEOUT_SECONDS
from smsdispatch.store.migrate import upgrade
from tests.api_server import served_api


def closed_port() -> int:
    """A loopback port nothing listens on: a connection is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.fixture
def proxy(postgres_url: str) -> Iterator[TcpProxy]:
    url = make_url(postgres_url)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as running:
        yield running


@pytest.fixture
def proxied_api(postgres_url: str, proxy: TcpProxy, redis_url: str) -> Iterator[httpx.Client]:
    """The API reaching the (migrated) PostgreSQL database through the proxy."""
    proxied = make_url(postgres_url).set(host=proxy.host, port=proxy.port)
    with served_api(
        database_url=proxied.render_as_string(hide_password=False), redis_url=redis_url
    ) as http:
        yield http


def ready(http: httpx.Client) -> httpx.Response:
    # No key: a probe holds none.
    return http.get("/readyz", headers={"X-API-Key": ""})


def test_healthz_answers_without_a_key_while_every_dependency_is_away(tmp_path: Path) -> None:
    with served_api(
        database_url=f"sqlite:///{tmp_path / 'none.db'}",
        redis_url=f"redis://127.0.0.1:{closed_port()}/0",
    ) as http:
        answer = http.get("/healthz", headers={"X-API-Key": ""})
    assert answer.status_code == 200
    assert answer.json() == {"status": "alive"}


def test_readyz_is_ready_on_a_migrated_database_with_redis_answering(
    database_url: str, redis_url: str
) -> None:
    with served_api(database_url=database_url, redis_url=redis_url) as http:
        answer = ready(http)
    assert answer.status_code == 200
    assert answer.json() == {"status": "ready", "checks": {"database": "ok", "redis": "ok"}}


@pytest.mark.postgres
def test_readyz_fails_while_the_database_is_stopped_and_recovers_when_it_is_back(
    proxied_api: httpx.Client, proxy: TcpProxy
) -> None:
    assert ready(proxied_api).status_code == 200  # a pooled connection is now open
    with proxy.down():  # connections reset, new ones refused: a stopped server
        away = ready(proxied_api)
    assert away.status_code == 503
    assert away.json() == {
        "status": "unready",
        "checks": {"database": "unreachable (OperationalError)", "redis": "ok"},
    }
    back = ready(proxied_api)
    assert back.status_code == 200
    assert back.json()["checks"] == {"database": "ok", "redis": "ok"}


@pytest.mark.postgres
def test_readyz_answers_in_time_while_the_database_hangs(
    proxied_api: httpx.Client, proxy: TcpProxy
) -> None:
    assert ready(proxied_api).status_code == 200
    proxy.hang()  # accepted, nothing forwarded: a partition or a frozen host
    try:
        started = time.monotonic()
        hung = ready(proxied_api)
        took = time.monotonic() - started
    finally:
        proxy.restore()
    assert hung.status_code == 503
    assert hung.json()["checks"] == {
        "database": f"no answer within {PROBE_TIMEOUT_SECONDS:g}s",
        "redis": "ok",
    }
    assert took < PROBE_TIMEOUT_SECONDS + 1.5
    assert ready(proxied_api).status_code == 200


def test_readyz_fails_on_a_database_without_the_migrations(tmp_path: Path, redis_url: str) -> None:
    with served_api(database_url=f"sqlite:///{tmp_path / 'empty.db'}", redis_url=redis_url) as http:
        answer = ready(http)
    assert answer.status_code == 503
    database = answer.json()["checks"]["database"]
    assert database.startswith("not migrated: at no tables, head is ")


def test_readyz_fails_on_a_database_behind_the_migrations_head(
    tmp_path: Path, redis_url: str
) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0001")
    with served_api(database_url=url, redis_url=redis_url) as http:
        answer = ready(http)
    assert answer.status_code == 503
    assert answer.json()["checks"]["database"].startswith("not migrated: at 0001, head is ")


def test_readyz_fails_when_redis_refuses_and_names_no_address(database_url: str) -> None:
    port = closed_port()
    with served_api(database_url=database_url, redis_url=f"redis://127.0.0.1:{port}/0") as http:
        answer = ready(http)
    assert answer.status_code == 503
    assert answer.json() == {
        "status": "unready",
        "checks": {"database": "ok", "redis": "unreachable (ConnectionError)"},
    }
    assert str(port) not in answer.text
