"""The one clock every host agrees on: the database server's.

A timestamp that one process writes and another compares (`next_attempt_at`,
a claim's deadline, a hold, a campaign's start, a report's age) must not come
from the host's own wall clock, which may be minutes off: a VM after a pause,
a host whose NTP broke. So every process reads the database's clock, once
per `resync_seconds`, and carries it forward on this host's monotonic clock
in between: a call costs no round trip, and the host's wall clock is never
read, so stepping it (NTP, an operator, libfaketime) changes nothing.

The monotonic clock is CLOCK_BOOTTIME where the platform has it: unlike
CLOCK_MONOTONIC it keeps counting while the machine is suspended, so a host
that slept does not come back with a clock that is behind.

A resync runs in a thread of its own, so no caller waits for it. If the
database cannot be reached then, the clock goes on from the last reading (a
monotonic clock drifts by parts per million, far below any deadline here)
and tries again after `retry_seconds`; only a clock that never reached the
database raises, and then its process could not use the database anyway.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


class EngineSource(Protocol):
    """Anything that hands out this process's engine (smsdispatch.store.db.Database)."""

    @property
    def engine(self) -> Engine: ...


def _monotonic() -> float:
    try:
        return time.clock_gettime(time.CLOCK_BOOTTIME)
    except (AttributeError, OSError):  # not Linux
        return time.monotonic()


# The server's current time as seconds since the epoch, on each backend.
# PostgreSQL's now() is the transaction's start; clock_timestamp() is now.
_NOW_SQL = {
    "postgresql": "SELECT extract(epoch FROM clock_timestamp())::float8",
    "sqlite": "SELECT (julianday('now') - 2440587.5) * 86400.0",
}


def server_time(engine: Engine) -> float:
    """The database server's clock, as seconds since the epoch."""
    sql = _NOW_SQL.get(engine.dialect.name)
    if sql is None:
        raise NotImplementedError(f"no server clock query for {engine.dialect.name}")
    with engine.connect() as conn:
        return float(conn.execute(text(sql)).scalar_one())


class DatabaseClock:
    """Now, as the database server sees it (timezone-aware UTC)."""

    def __init__(
        self,
        source: EngineSource,
        *,
        resync_seconds: float = 30.0,
        retry_seconds: float = 2.0,
        monotonic: Callable[[], float] = _monotonic,
        background: bool = True,
    ) -> None:
        self._source = source
        self._resync = resync_seconds
        self._retry = retry_seconds
        self._monotonic = monotonic
        # Resync in a thread of its own once a reading exists, so no caller
        # (an event loop, above all) waits on a database that does not answer.
        self._background = background
        self._lock = threading.Lock()
        # (server seconds, monotonic seconds at that moment): one tuple, so a
        # reader never pairs a new reading with an old base.
        self._reading: tuple[float, float] | None = None
        self._next_sync = 0.0
        self._syncing = False

    def __call__(self) -> datetime:
        now = self._monotonic()
        if self._reading is None:
            self._sync()  # nothing to carry forward yet: the caller waits
        elif now >= self._next_sync:
            self._resync_soon()
        reading = self._reading
        assert reading is not None
        epoch, base = reading
        return datetime.fromtimestamp(epoch + (now - base), UTC)

    def _resync_soon(self) -> None:
        with self._lock:
            if self._syncing:
                return
            self._syncing = True
        if self._background:
            threading.Thread(target=self._sync_quietly, name="db-clock", daemon=True).start()
        else:
            self._sync_quietly()

    def _sync_quietly(self) -> None:
        try:
            self._sync()
        except SQLAlchemyError:
            # Carry on from the last reading; ask again soon.
            log.debug("database clock unreachable; carrying the last reading forward")
        finally:
            self._syncing = False

    def _sync(self) -> None:
        try:
            before = self._monotonic()
            server = server_time(self._source.engine)
            after = self._monotonic()
        except SQLAlchemyError:
            self._next_sync = self._monotonic() + self._retry
            raise
        # The server read its clock somewhere between `before` and `after`.
        self._reading = (server, (before + after) / 2)
        self._next_sync = after + self._resync
