"""A real stack for end-to-end tests: worker and beat processes, Redis, a database.

The simulators run in the test process (so tests turn their knobs directly);
workers and beat are real subprocesses started the way an operator starts
them, configured through the environment.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from celery import Celery
from sqlalchemy import select

from smsdispatch.config.catalog import Catalog, load_catalog
from smsdispatch.config.settings import Settings
from smsdispatch.local.catalogs import catalog_data, merged, write_catalog
from smsdispatch.local.environment import credentials_from, stack_env
from smsdispatch.local.processes import (
    WORKER_CONCURRENCY,
    ManagedProcess,
    celery_beat,
    celery_worker,
)
from smsdispatch.local.simulators import SimulatorServer
from smsdispatch.producer.api import Producer
from smsdispatch.store.db import Database
from smsdispatch.store.models import messages
from smsdispatch.store.outbox import status_counts
from smsdispatch.vocabulary import keys, names
from smsdispatch.vocabulary.status import SETTLED
from smsdispatch.workers.app import create_app
from tests.settings import TEST_CREDENTIALS, make_settings

# Short waits so failures and recoveries play out in seconds.
FAST_RETRY = {
    "max_attempts": 30,
    "backoff_base_seconds": 0.2,
    "backoff_cap_seconds": 1.0,
    "rate_limited_wait_seconds": 1.0,
    "pause_seconds": 2.0,
    "throttle_pause_seconds": 1.0,
    "throttle_pause_cap_seconds": 4.0,
}
TIMINGS = {
    "SWEEP_INTERVAL_SECONDS": "0.5",
    "REQUEUE_AFTER_SECONDS": "4",
    "SENDING_DEADLINE_SECONDS": "25",
    "HTTP_TOTAL_TIMEOUT_SECONDS": "20",
    # Long enough that a busy CI machine never looks like a vendor timing out;
    # the timeout test hangs the simulator longer than this on purpose.
    "HTTP_READ_TIMEOUT_SECONDS": "20",
}


def write_test_catalog(directory: Path, overrides: Mapping[str, Any] | None) -> Path:
    """The default catalog with fast retries, and any overrides for this test."""
    fast = {name: {"retry": FAST_RETRY} for name in catalog_data()["providers"]}
    return write_catalog(directory / "providers.toml", merged({"providers": fast}, overrides or {}))


@dataclass
class Stack:
    settings: Settings
    catalog: Catalog
    env: dict[str, str]
    log_dir: Path
    simulators: SimulatorServer
    db: Database
    celery: Celery
    processes: list[ManagedProcess] = field(default_factory=list)

    @property
    def producer(self) -> Producer:
        return Producer(self.settings, self.catalog, self.db, self.celery)

    def start_worker(
        self,
        name: str = "worker",
        queues: list[str] | None = None,
        concurrency: int = WORKER_CONCURRENCY,
    ) -> ManagedProcess:
        if queues is None:
            queues = names.queues(self.catalog.providers)
            queues += [names.DEFAULT_QUEUE, names.MAINTENANCE_QUEUE, names.CALLBACKS_QUEUE]
        worker = celery_worker(
            self.env, self.log_dir, queues, name=name, loglevel="INFO", concurrency=concurrency
        )
        self.processes.append(worker.start())
        return worker

    def start_beat(self) -> ManagedProcess:
        beat = celery_beat(self.env, self.log_dir)
        self.processes.append(beat.start())
        return beat

    def counts(self) -> dict[str, int]:
        with self.db.session() as session:
            totals: dict[str, int] = {}
            for (_, status), n in status_counts(session).items():
                totals[status] = totals.get(status, 0) + n
            return totals

    def wait_settled(self, total: int, timeout: float = 120.0) -> dict[str, int]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            counts = self.counts()
            if sum(n for s, n in counts.items() if s in SETTLED) >= total:
                return counts
            time.sleep(0.25)
        logs = "\n".join(f"--- {p.name}\n{p.log_tail()}" for p in self.processes)
        raise AssertionError(f"not settled after {timeout}s: {self.counts()}\n{logs}")

    def rows(self) -> list[tuple[int, str, str, str | None]]:
        """(id, provider, status, tracking_id) of every message."""
        with self.db.session() as session:
            m = messages.c
            result = session.execute(select(m.id, m.provider, m.status, m.tracking_id))
            return [(r.id, r.provider, r.status, r.tracking_id) for r in result]

    def stop(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()


@contextmanager
def running_stack(
    *,
    redis_url: str,
    database_url: str,
    simulators: SimulatorServer,
    tmp_path: Path,
    extra_env: Mapping[str, str] | None = None,
    beat: bool = True,
    catalog: Mapping[str, Any] | None = None,
) -> Iterator[Stack]:
    catalog_path = write_test_catalog(tmp_path, catalog)
    env = stack_env(
        redis_url=redis_url,
        database_url=database_url,
        simulators_root=simulators.root,
        credentials=credentials_from(TEST_CREDENTIALS),
        extra={**TIMINGS, "CATALOG_PATH": str(catalog_path), **(extra_env or {})},
    )
    settings = make_settings(
        redis_url=redis_url, database_url=database_url, catalog_path=catalog_path
    )
    # A fresh test Redis has nothing booked: mark the limiter's state intact so
    # the reset guard (for a Redis that lost bookings) does not apply.
    marker = redis.Redis.from_url(redis_url)
    marker.set(keys.LIMITER_STATE, 0)
    marker.close()
    celery = create_app(settings)
    stack = Stack(
        settings,
        load_catalog(catalog_path),
        env,
        tmp_path,
        simulators,
        Database(database_url),
        celery,
    )
    try:
        stack.start_worker()
        if beat:
            stack.start_beat()
        yield stack
    finally:
        stack.stop()
        celery.close()
        stack.db.dispose()
