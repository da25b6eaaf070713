"""Engines and sessions, built per process (after a worker forks, never at import)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from smsdispatch.store.clock import DatabaseClock

T = TypeVar("T")
log = logging.getLogger(__name__)

# What a database that cannot be reached raises (refused, dropped, timed
# out; SQLite's "database is locked" too): worth trying again shortly.
DATABASE_AWAY: tuple[type[Exception], ...] = (OperationalError, InterfaceError)

# libpq: give up connecting after 5 s; notice a peer that vanished (a network
# partition, not a refusal) within about 15 s of silence.
POSTGRES_CONNECT_ARGS = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 15000,
}


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine tuned for the backend: WAL and a busy timeout for SQLite.

    Several worker processes write to one SQLite file in the demo; WAL lets
    readers go on while one writes, and the busy timeout makes writers queue
    instead of failing with "database is locked".
    """
    if url.startswith("sqlite"):
        kwargs.pop("pool_size", None)  # NullPool: a connection per session
        engine = create_engine(url, connect_args={"timeout": 30}, poolclass=NullPool, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    # A connection the server dropped (a restart, a failover) is replaced on
    # checkout instead of failing the next statement; a server that does not
    # answer is given up on in seconds, not after the kernel's two minutes,
    # so a worker holding vendor answers gets to keep them elsewhere
    # (sending/pipeline.py) and beat's next run tries again.
    kwargs.setdefault("pool_pre_ping", True)
    if url.startswith("postgresql"):
        kwargs.setdefault("connect_args", POSTGRES_CONNECT_ARGS)
    return create_engine(url, **kwargs)


class Database:
    """One engine and session factory per process; rebuilt if the pid changes."""

    def __init__(self, url: str, pool_size: int = 5) -> None:
        self.url = url
        # PostgreSQL connections kept open. A threaded server must keep as many
        # as it runs requests at once: connections beyond the pool are opened
        # and closed per use, and opening one costs milliseconds.
        self.pool_size = pool_size
        self._pid = -1
        self._engine: Engine | None = None
        self._sessions: sessionmaker[Session] | None = None
        # The time every process agrees on (store/clock.py): what this
        # process stamps rows with and compares them against.
        self.clock = DatabaseClock(self)

    @property
    def engine(self) -> Engine:
        if self._engine is None or self._pid != os.getpid():
            self._engine = make_engine(self.url, pool_size=self.pool_size)
            self._sessions = sessionmaker(self._engine, expire_on_commit=False)
            self._pid = os.getpid()
        return self._engine

    def session(self) -> Session:
        self.engine  # noqa: B018  (builds the factory for this process)
        assert self._sessions is not None
        return self._sessions()

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
        self._engine = None


def retrying(
    attempt: Callable[[], T],
    budget_seconds: float,
    *,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> T:
    """`attempt()`, tried again with back-off while the database is away, for
    up to `budget_seconds`; then its last error is raised."""
    deadline = monotonic() + budget_seconds
    delay = 0.25
    while True:
        try:
            return attempt()
        except DATABASE_AWAY as exc:
            if monotonic() + delay > deadline:
                raise
            log.warning("database unreachable while %s (%s); again in %.2gs", what,
                        type(exc).__name__, delay)  # fmt: skip
        sleep(delay)
        delay = min(delay * 2, 4.0)
