"""Per-process resources of a worker: built on first use after fork.

Engines, Redis connections, the event loop and the httpx client must not be
shared across a fork; keying the singleton by pid rebuilds them in each child.

One event loop per process, on a thread of its own, serves every task the
process runs at once: with Celery's thread pool (`-P threads`), a task for
Cue waiting for its limiter slot and a task for Skycore sending share one
loop, one HTTP pool and one limiter connection, so the process never sits
idle on one vendor's slot while another vendor has work (DESIGN.md,
"Every ceiling at once"). With prefork or solo the same loop serves the one
task at a time.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import threading
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

import httpx
import redis
import redis.asyncio as aioredis
import uvloop
from celery import Celery
from sqlalchemy import select
from sqlalchemy.orm import Session

from smsdispatch.callbacks.worker import CallbackWorker, callback_client
from smsdispatch.campaigns.templates import Template
from smsdispatch.config.catalog import Catalog, load_catalog
from smsdispatch.config.settings import Settings, get_settings
from smsdispatch.limits.gate import LimiterGate
from smsdispatch.limits.gcra import RedisLimiter
from smsdispatch.monitoring.counters import MetricsBuffer
from smsdispatch.providers.base import Adapter
from smsdispatch.providers.registry import build_adapter
from smsdispatch.providers.transport import vendor_client
from smsdispatch.reports.urls import report_url
from smsdispatch.routing.delivery import DeliveryBoard
from smsdispatch.routing.health import HealthBoard
from smsdispatch.routing.router import Router
from smsdispatch.store.clock import Clock
from smsdispatch.store.db import Database
from smsdispatch.store.models import campaigns

T = TypeVar("T")
log = logging.getLogger(__name__)


class Runtime:
    def __init__(
        self,
        settings: Settings,
        catalog: Catalog | None = None,
        celery: Celery | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.catalog = catalog or load_catalog(settings.catalog_path)
        self.db = Database(settings.database_url)
        # The time rows are stamped with and compared against: the database's
        # (store/clock.py), shared by every host; tests pass a fake. The rate
        # limiter uses Redis server time instead.
        self.clock = clock or self.db.clock
        # A Redis that hangs rather than refuses must not hold a worker (its
        # pauses, its journal, the sweeper) for good.
        self.redis = redis.Redis.from_url(
            settings.redis_url, socket_timeout=5, socket_connect_timeout=2
        )
        self._celery = celery
        # uvloop: the event loop every vendor call runs on (see BENCHMARKS.md),
        # started with the first coroutine and shared by the process's tasks.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._loop_lock = threading.Lock()
        self._client: httpx.AsyncClient | None = None
        self._callbacks: CallbackWorker | None = None
        self._callback_client: httpx.AsyncClient | None = None
        # Coroutines handed to the loop without waiting (callbacks' POSTs).
        self._spawned: set[concurrent.futures.Future[Any]] = set()
        self._aioredis: aioredis.Redis | None = None
        self._limiter: RedisLimiter | None = None
        self._health: HealthBoard | None = None
        self._router: Router | None = None
        self._delivery: DeliveryBoard | None = None
        self._unconfigured: dict[str, bool] | None = None
        self._adapters: dict[str, Adapter[Any]] = {}
        self._templates: dict[int, str | None] = {}
        # Counted per batch, added to Redis once per batch (monitoring/counters.py).
        self.metrics = MetricsBuffer()

    @property
    def celery(self) -> Celery:
        if self._celery is None:
            from smsdispatch.workers.app import create_app

            self._celery = create_app(self.settings)
        return self._celery

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on this process's loop and wait for it.

        Called from task threads, never from the loop itself. Coroutines of
        several tasks run there concurrently; the HTTP pool stays warm.
        """
        return asyncio.run_coroutine_threadsafe(coro, self._running_loop()).result()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Start a coroutine on this process's loop and return at once; its
        error, if any, is logged. Status callbacks' POSTs run so: no task
        thread waits on a receiver."""
        future = asyncio.run_coroutine_threadsafe(coro, self._running_loop())
        self._spawned.add(future)
        future.add_done_callback(self._spawn_done)

    def _spawn_done(self, future: concurrent.futures.Future[Any]) -> None:
        self._spawned.discard(future)
        if not future.cancelled() and future.exception() is not None:
            log.error("a background coroutine failed", exc_info=future.exception())

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._loop_lock:
            if self._loop is None:
                loop = uvloop.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="smsdispatch-loop", daemon=True
                )
                thread.start()
                self._loop, self._loop_thread = loop, thread
            return self._loop

    def adapter(self, provider: str) -> Adapter[Any]:
        if provider not in self._adapters:
            entry = self.catalog.get(provider)
            gate = LimiterGate(
                self.limiter,
                entry,
                clock=self.clock,
                max_wait=self.settings.limiter_max_wait_seconds,
                jitter=self.settings.limiter_jitter_seconds,
                metrics=self.metrics,
            )
            self._adapters[provider] = build_adapter(
                provider,
                self.settings,
                self.http,
                self.catalog,
                gate=gate,
                report_url=report_url(self.settings, provider),
            )
        return self._adapters[provider]

    def load_templates(self, session: Session, campaign_ids: Iterable[int | None]) -> None:
        """Read the templates of these campaigns not yet known, in the caller's
        transaction: a campaign's template never changes once it has messages,
        so each is read once for the life of the process."""
        missing = {c for c in campaign_ids if c is not None and c not in self._templates}
        if not missing:
            return
        rows = session.execute(
            select(campaigns.c.id, campaigns.c.template).where(campaigns.c.id.in_(missing))
        )
        found: dict[int, str] = {cid: source for cid, source in rows}
        for campaign_id in missing:
            source = found.get(campaign_id)
            self._templates[campaign_id] = (
                Template.parse(source).positional() if source is not None else None
            )

    def campaign_template(self, campaign_id: int | None) -> str | None:
        """The campaign's template in positional form ("Hi {0}"), or None
        (loaded by `load_templates`)."""
        return self._templates.get(campaign_id) if campaign_id is not None else None

    @property
    def http(self) -> httpx.AsyncClient:
        if self._client is None:
            s = self.settings
            self._client = vendor_client(
                connect_timeout=s.http_connect_timeout_seconds,
                read_timeout=s.http_read_timeout_seconds,
                max_connections=s.http_max_connections,
                keepalive_seconds=s.http_keepalive_seconds,
            )
        return self._client

    @property
    def callbacks(self) -> CallbackWorker:
        """Status callbacks' delivery: its own HTTP pool (short timeouts, no
        redirects), so receivers never share connections with the vendors."""
        if self._callbacks is None:
            s = self.settings
            self._callback_client = callback_client(s)
            self._callbacks = CallbackWorker(
                s, self.db, self.clock, self._callback_client, self.aioredis
            )
        return self._callbacks

    @property
    def aioredis(self) -> aioredis.Redis:
        """Redis for the event loop: the limiter and the answer journal."""
        if self._aioredis is None:
            # A task asks for a hundred slots at once: excess callers wait for
            # a connection instead of failing, and a Redis that is down fails
            # fast (the gate then defers: no limiter, no send).
            pool = aioredis.BlockingConnectionPool.from_url(
                self.settings.redis_url,
                max_connections=32,
                timeout=5,
                socket_timeout=5,
                socket_connect_timeout=2,
            )
            # from_pool: the client owns the pool and closes it with itself.
            self._aioredis = aioredis.Redis.from_pool(pool)
        return self._aioredis

    @property
    def limiter(self) -> RedisLimiter:
        if self._limiter is None:
            self._limiter = RedisLimiter(
                self.aioredis, reset_guard=self.settings.limiter_max_wait_seconds + 1.0
            )
        return self._limiter

    @property
    def health(self) -> HealthBoard:
        if self._health is None:
            self._health = HealthBoard(self.redis, self.catalog.breaker)
        return self._health

    @property
    def delivery(self) -> DeliveryBoard:
        if self._delivery is None:
            self._delivery = DeliveryBoard(self.redis, self.catalog.delivery)
        return self._delivery

    @property
    def router(self) -> Router:
        if self._router is None:
            self._router = Router(self.catalog, self.redis)
        return self._router

    @property
    def unconfigured(self) -> dict[str, bool]:
        """Which vendors lack a required setting: failover never moves a message there."""
        if self._unconfigured is None:
            self._unconfigured = {
                name: bool(self.settings.vendor(name).missing(name))
                for name in self.catalog.providers
            }
        return self._unconfigured

    def close(self, timeout: float = 5.0) -> None:
        """Close the pools and stop the loop; a loop that does not stop within
        `timeout` is left to the daemon thread rather than hang the caller."""
        loop, thread = self._loop, self._loop_thread
        if loop is not None and thread is not None:
            for closing in (self._client, self._callback_client, self._aioredis):
                if closing is not None:
                    future = asyncio.run_coroutine_threadsafe(closing.aclose(), loop)
                    with contextlib.suppress(Exception):
                        future.result(timeout)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
            if not thread.is_alive():
                loop.close()
        self._loop = self._loop_thread = None
        self._client = self._callback_client = self._aioredis = self._limiter = None
        self._callbacks = None
        self._adapters.clear()
        self.redis.close()
        self.db.dispose()
        with _lock:
            if _runtimes.get(os.getpid()) is self:
                del _runtimes[os.getpid()]


_lock = threading.Lock()
_runtimes: dict[int, Runtime] = {}


def get_runtime() -> Runtime:
    """This process's runtime, shared by its task threads."""
    key = os.getpid()
    with _lock:
        runtime = _runtimes.get(key)
        if runtime is None:
            runtime = _runtimes[key] = Runtime(get_settings())
        return runtime
