"""Driving status callbacks the way the worker does, without Celery: beat's
sweep hands out due ids, each chunk is claimed and posted on one event loop
(as the `deliver` task's `spawn` does), until none is pending."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis

from smsdispatch.callbacks.worker import CallbackWorker, callback_client, sweep
from smsdispatch.config.settings import Settings
from smsdispatch.store import callbacks as store
from smsdispatch.store.db import Database
from tests.callback_receiver import SECRET
from tests.settings import make_settings


def callback_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "callback_secret": SECRET,
        "callback_allow_private": True,  # the receivers are on loopback
        "callback_host_rate_per_second": 100_000.0,
        "callback_host_concurrency": 64,
        "callback_timeout_seconds": 10.0,  # a loaded test machine is slow
        "callback_retry_first_seconds": 0.05,
        "callback_retry_max_seconds": 0.2,
        "callback_task_size": 100,
    }
    return make_settings(**(values | overrides))


def pending(db: Database) -> int:
    with db.session() as session:
        return store.pending_count(session)


async def drain(
    db: Database,
    settings: Settings,
    redis_url: str,
    *,
    seconds: float,
    done: Callable[[], bool] | None = None,
) -> None:
    """Sweep, claim and post until nothing is pending (or `done()` is true),
    for at most `seconds`; deliveries still hanging then are cancelled."""
    # As the runtime's: a bounded pool whose excess callers wait.
    pool = aioredis.BlockingConnectionPool.from_url(redis_url, max_connections=32, timeout=5)
    client = aioredis.Redis.from_pool(pool)
    worker = CallbackWorker(settings, db, db.clock, callback_client(settings), client)
    running: set[asyncio.Task[None]] = set()
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            finished = done() if done else await asyncio.to_thread(pending, db) == 0
            if finished:
                break
            ids = await asyncio.to_thread(sweep, db, db.clock, settings)
            for start in range(0, len(ids), settings.callback_task_size):
                claimed = await asyncio.to_thread(
                    worker.claim, ids[start : start + settings.callback_task_size]
                )
                task = asyncio.create_task(worker.deliver(claimed))
                running.add(task)
                task.add_done_callback(running.discard)
            await asyncio.sleep(0.02)
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        await worker.client.aclose()
        await client.aclose()
