"""The shared clock: the database server's time, whatever the host's clock says."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import OperationalError

from smsdispatch.store.clock import DatabaseClock, server_time
from smsdispatch.store.db import make_engine
from tests.skew import faketime_argv


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Source:
    """An engine that can be swapped for one that cannot connect."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.queries = 0
        self.connects = 0
        event.listen(engine, "before_cursor_execute", self._count)
        event.listen(engine.pool, "first_connect", self._connected, once=False)
        event.listen(engine, "handle_error", self._failed)

    def _count(self, *_: object) -> None:
        self.queries += 1

    def _connected(self, *_: object) -> None:
        self.connects += 1

    def _failed(self, *_: object) -> None:
        self.connects += 1


UNREACHABLE = "postgresql+psycopg://postgres@127.0.0.1:9/unreachable?connect_timeout=1"


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Engine:
    return make_engine(f"sqlite:///{tmp_path / 'clock.db'}")


def test_the_clock_reads_the_server_once_per_period_and_counts_on_in_between(
    sqlite_engine: Engine,
) -> None:
    monotonic, source = Monotonic(), Source(sqlite_engine)
    clock = DatabaseClock(source, resync_seconds=30, monotonic=monotonic, background=False)

    first = clock()
    monotonic.now += 12.5
    second = clock()

    assert source.queries == 1
    assert second - first == timedelta(seconds=12.5)
    monotonic.now += 30
    clock()
    assert source.queries == 2


def test_the_clock_carries_its_last_reading_forward_while_the_database_is_away(
    sqlite_engine: Engine,
) -> None:
    monotonic, source = Monotonic(), Source(sqlite_engine)
    clock = DatabaseClock(
        source, resync_seconds=30, retry_seconds=2, monotonic=monotonic, background=False
    )
    first = clock()
    source.engine = create_engine(UNREACHABLE)

    monotonic.now += 60
    assert clock() - first == timedelta(seconds=60)
    monotonic.now += 60
    assert clock() - first == timedelta(seconds=120)


def test_a_clock_that_cannot_reach_the_database_asks_again_only_after_a_pause(
    sqlite_engine: Engine,
) -> None:
    monotonic, source = Monotonic(), Source(sqlite_engine)
    clock = DatabaseClock(
        source, resync_seconds=30, retry_seconds=2, monotonic=monotonic, background=False
    )
    clock()
    unreachable = Source(create_engine(UNREACHABLE))
    source.engine = unreachable.engine
    monotonic.now += 31

    clock()
    clock()
    monotonic.now += 1
    clock()
    assert unreachable.connects == 1
    monotonic.now += 1.5
    clock()
    assert unreachable.connects == 2


def test_a_resync_does_not_keep_its_caller_waiting(sqlite_engine: Engine) -> None:
    monotonic, source = Monotonic(), Source(sqlite_engine)
    clock = DatabaseClock(source, resync_seconds=30, monotonic=monotonic)
    clock()
    slow = threading.Event()
    event.listen(sqlite_engine, "before_cursor_execute", lambda *_: slow.wait(5))
    monotonic.now += 31

    started = time.monotonic()
    clock()
    assert time.monotonic() - started < 1
    slow.set()


def test_a_clock_that_never_reached_the_database_raises() -> None:
    clock = DatabaseClock(Source(create_engine(UNREACHABLE)))

    with pytest.raises(OperationalError):
        clock()


@pytest.mark.postgres
@pytest.mark.parametrize("offset", ["-180s", "+180s"])
def test_a_host_whose_clock_is_minutes_off_reads_the_databases_time(
    postgres_url: str, offset: str
) -> None:
    """A process under libfaketime (its wall clock 3 minutes off) stamps rows
    with the time every other host agrees on."""
    script = (
        "import sys; from datetime import datetime, UTC; "
        "from smsdispatch.store.db import Database; "
        "db = Database(sys.argv[1]); print(db.clock().timestamp(), datetime.now(UTC).timestamp())"
    )
    out = subprocess.run(
        [*faketime_argv(offset), sys.executable, "-c", script, postgres_url],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
        cwd=Path(__file__).parents[1],
    ).stdout.split()
    shared, host = (datetime.fromtimestamp(float(v), UTC) for v in out)
    engine = make_engine(postgres_url)
    server = datetime.fromtimestamp(server_time(engine), UTC)
    engine.dispose()

    assert abs(host - server) > timedelta(seconds=170)  # the host really is off
    assert abs(shared - server) < timedelta(seconds=2)
