"""Fixtures shared by every test: settings, the catalog, the simulators."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from celery import Celery
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from smsdispatch.config.catalog import Catalog, load_catalog
from smsdispatch.config.settings import DEFAULT_CATALOG, Settings
from smsdispatch.local.simulators import SimulatorServer
from smsdispatch.producer.api import Producer
from smsdispatch.simulators.app import pointed_at
from smsdispatch.store.db import Database
from smsdispatch.store.migrate import upgrade
from smsdispatch.vocabulary import keys
from smsdispatch.workers.app import create_app
from tests.settings import POSTGRES_URL, REDIS_URL, make_settings


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog(DEFAULT_CATALOG)


@pytest.fixture(scope="session")
def simulator_server() -> Iterator[SimulatorServer]:
    with SimulatorServer(make_settings()) as server:
        yield server


@pytest.fixture
def simulators(simulator_server: SimulatorServer) -> SimulatorServer:
    """The running simulators, with a clean record and default knobs."""
    simulator_server.reset()
    return simulator_server


@pytest.fixture
def settings(simulators: SimulatorServer) -> Settings:
    """Test settings with every vendor pointed at the simulators."""
    return pointed_at(make_settings(), simulators.root)


# -- real servers ------------------------------------------------------------


def _require_postgres() -> str:
    """The test database URL, creating the database if needed; fails loudly."""
    from sqlalchemy.engine import make_url

    url = make_url(POSTGRES_URL)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": url.database}
            ).scalar()
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{url.database}"'))
    except OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {url.render_as_string(hide_password=True)}"
            f" (set TEST_POSTGRES_URL, or start it: pg_ctlcluster ... main start): "
            f"{exc.orig}",
            pytrace=False,
        )
    finally:
        admin.dispose()
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def redis_url() -> str:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        pytest.fail(
            f"Redis is not reachable at {REDIS_URL} (set TEST_REDIS_URL, or start "
            f"redis-server): {exc}",
            pytrace=False,
        )
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    # Nothing is booked in a fresh test Redis: the limiter's state is intact
    # (without the marker the limiter guards against a Redis that lost bookings).
    client.set(keys.LIMITER_STATE, 0)
    yield client
    client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def postgres_url() -> str:
    url = _require_postgres()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    upgrade(url)
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty results database on each backend."""
    yield from migrated_database(request, tmp_path)


def migrated_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The backend `request.param` names, migrated and empty."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'results.db'}"
        upgrade(url)
        yield url
        return
    url = request.getfixturevalue("postgres_url")
    _truncate(url)
    yield url


def _truncate(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "TRUNCATE messages, send_attempts, campaigns, opt_outs, delivery_reports, "
                "api_keys, status_callbacks RESTART IDENTITY CASCADE"
            )
        )
    engine.dispose()


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    yield db
    db.dispose()


# -- the producer, with its broker -------------------------------------------


@pytest.fixture
def celery(redis_client: redis.Redis, redis_url: str) -> Iterator[Celery]:
    """The Celery app producers publish with, on the test Redis."""
    app = create_app(make_settings(redis_url=redis_url))
    yield app
    app.close()


@pytest.fixture
def producer(database: Database, catalog: Catalog, celery: Celery) -> Producer:
    return Producer(make_settings(), catalog, database, celery)
