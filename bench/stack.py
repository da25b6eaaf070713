"""The stack every benchmark runs on: a private Redis, the simulators, a catalog.

Workers are started by each benchmark (how many, on which queues, is part of
what it measures); everything else is the same for all of them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import create_engine, text

from smsdispatch.config.catalog import Catalog, load_catalog
from smsdispatch.config.settings import Settings
from smsdispatch.local.catalogs import write_catalog
from smsdispatch.local.environment import demo_credentials, settings_from_env, stack_env
from smsdispatch.local.processes import (
    ManagedProcess,
    PrivateRedis,
    free_port,
    simulators_process,
    wait_http,
)
from smsdispatch.vocabulary import keys


@dataclass
class BenchStack:
    workdir: Path
    env: dict[str, str]
    sim_root: str
    broker_url: str
    settings: Settings
    catalog: Catalog
    processes: list[ManagedProcess] = field(default_factory=list)

    def start(self, process: ManagedProcess) -> ManagedProcess:
        self.processes.append(process.start())
        return process


@contextmanager
def bench_stack(
    database_url: str, *, catalog: Mapping[str, Any] | None = None, lift_limits: bool = False
) -> Iterator[BenchStack]:
    """A migrated, empty database, a private Redis and the simulators, torn down after."""
    ensure_database(database_url)
    from smsdispatch.store.migrate import upgrade

    upgrade(database_url)
    reset_database(database_url)
    workdir = Path(tempfile.mkdtemp(prefix="smsdispatch-bench-"))
    processes: list[ManagedProcess] = []
    try:
        broker = PrivateRedis(workdir).start()
        processes.append(broker)
        mark_limiter_state_intact(broker.url)
        sim_port = free_port()
        sim_root = f"http://127.0.0.1:{sim_port}"
        catalog_path = write_catalog(workdir / "providers.toml", catalog, lift_limits=lift_limits)
        env = stack_env(
            redis_url=broker.url,
            database_url=database_url,
            simulators_root=sim_root,
            credentials=demo_credentials(),
            extra={"CATALOG_PATH": str(catalog_path)},
        )
        processes.append(simulators_process(env, workdir, sim_port).start())
        wait_http(f"{sim_root}/_sim/cue/stats")
        settings = Settings(_env_file=None, **settings_from_env(env))
        stack = BenchStack(
            workdir, env, sim_root, broker.url, settings, load_catalog(catalog_path), processes
        )
        yield stack
    finally:
        for process in reversed(processes):
            process.stop()


def mark_limiter_state_intact(redis_url: str) -> None:
    """A new Redis has nothing booked. Without the marker the limiter takes
    it for one that lost its bookings and holds every limit for a guard
    period (limits/gcra.py; LIMITER_MAX_WAIT_SECONDS + 1 s): up to three
    seconds at the start of each run, depending on each limit's burst,
    counted against sending, which they are not."""
    client = redis.Redis.from_url(redis_url)
    try:
        client.set(keys.LIMITER_STATE, 0)
    finally:
        client.close()


def ensure_database(url: str) -> None:
    if not url.startswith("postgresql"):
        return
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": parsed.database}
        ).scalar():
            conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()


def reset_database(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(
                text(
                    "TRUNCATE messages, send_attempts, campaigns, opt_outs, delivery_reports "
                    "RESTART IDENTITY CASCADE"
                )
            )
        else:
            for table in (
                "status_callbacks",
                "delivery_reports",
                "send_attempts",
                "messages",
                "campaigns",
                "opt_outs",
            ):
                conn.execute(text(f"DELETE FROM {table}"))  # noqa: S608 (our own names)
    engine.dispose()
