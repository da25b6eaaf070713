"""Deliver claimed status callbacks on the worker's event loop.

The Celery task (tasks/callbacks.py) claims its ids in its own thread, hands
the POSTs to the process's event loop and returns at once: no worker thread
waits on a receiver, so a hanging one costs a coroutine and, through the
host gate, at most CALLBACK_HOST_CONCURRENCY of them. The claim's lease
(twice the POST's timeout and some) covers the work: a process killed
mid-POST leaves rows that come due again when the lease ends.

Verdicts are written in one statement per batch (from a thread, so the loop
never waits on the database), then counted in Redis for /metrics.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets as token_source
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
import redis.asyncio as aioredis

from smsdispatch.callbacks.delivery import Answer, post, verdict
from smsdispatch.callbacks.hosts import HostGate, host_of
from smsdispatch.config.settings import Settings
from smsdispatch.monitoring.counters import add_callback_metrics
from smsdispatch.producer.callback_urls import AsyncUrlChecker
from smsdispatch.providers.transport import vendor_client
from smsdispatch.store import callbacks as store
from smsdispatch.store.callbacks import CallbackState, DueCallback, Verdict
from smsdispatch.store.clock import Clock
from smsdispatch.store.db import Database

log = logging.getLogger(__name__)

# A host that is busy or at its rate: the coroutine asks again every
# BUSY_POLL for up to BUSY_HOLD (a sleeping coroutine costs nothing), then
# hands the callback back to the database, due again after BUSY_WAIT.
BUSY_POLL = 0.02
BUSY_HOLD = 1.0
BUSY_WAIT = timedelta(seconds=0.2)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A claimed batch and the secrets that sign it (never on the broker)."""

    due: list[DueCallback]
    secrets: dict[int | None, str] = field(default_factory=dict)


def callback_client(settings: Settings) -> httpx.AsyncClient:
    """The pool callbacks are posted with: the vendors' transport (aiohttp's
    pool under httpx's API: providers/transport.py), short timeouts, and
    redirects not followed (a redirect is a 3xx: failed)."""
    return vendor_client(
        connect_timeout=settings.callback_connect_timeout_seconds,
        read_timeout=settings.callback_timeout_seconds,
        max_connections=500,
    )


def lease(settings: Settings) -> timedelta:
    """How long a claimed callback is ours: its POST's timeout twice, and some."""
    return timedelta(seconds=2 * settings.callback_timeout_seconds + 10)


class CallbackWorker:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        clock: Clock,
        client: httpx.AsyncClient,
        aioredis_client: aioredis.Redis,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        self.client = client
        self.redis = aioredis_client
        self.gate = HostGate(
            aioredis_client,
            concurrency=settings.callback_host_concurrency,
            rate_per_second=settings.callback_host_rate_per_second,
            hold_seconds=2 * settings.callback_timeout_seconds,
        )
        self.check_url = AsyncUrlChecker(settings.callback_allow_private)
        # Per host, this process's POSTs in flight (the loop's own, no lock needed).
        self._local: dict[str, asyncio.Semaphore] = {}
        self.rng = rng or random.Random()

    def claim(self, ids: Sequence[int]) -> Claimed:
        """Take these callbacks (those still due) and their signing secrets."""
        token = token_source.token_hex(8)
        with self.db.session() as session, session.begin():
            due = store.claim(session, ids, self.clock(), token, lease(self.settings))
            key_ids = [d.key_id for d in due if d.key_id is not None]
            found = store.secrets_of(session, key_ids) if key_ids else {}
        default = self.settings.callback_secret.get_secret_value()
        signing: dict[int | None, str] = {None: default}
        for d in due:
            if d.key_id is not None:
                signing[d.key_id] = found.get(d.key_id, default)
        return Claimed(due, signing)

    async def deliver(self, claimed: Claimed) -> None:
        """POST every callback of the batch at once; each host's verdicts are
        written as soon as that host's POSTs are done, so a receiver that
        hangs delays no other receiver's record."""
        by_host: dict[str, list[DueCallback]] = {}
        for due in claimed.due:
            by_host.setdefault(host_of(due.url), []).append(due)
        await asyncio.gather(*(self._host(group, claimed.secrets) for group in by_host.values()))

    async def _host(self, due: list[DueCallback], signing: dict[int | None, str]) -> None:
        verdicts = await asyncio.gather(*(self._one(d, signing) for d in due))
        await asyncio.to_thread(self._record, verdicts)
        await self._count(due, verdicts)

    async def _one(self, due: DueCallback, signing: dict[int | None, str]) -> Verdict:
        secret = signing.get(due.key_id, "")
        if not secret:
            answer = Answer(None, "refused: no secret to sign with (CALLBACK_SECRET)", refused=True)
            return verdict(due, answer, self.settings, self.clock(), self.rng)
        host = host_of(due.url)
        # This process's own share first (no Redis round trip while it waits),
        # then the cluster's slot.
        local = self._local.setdefault(
            host, asyncio.Semaphore(self.settings.callback_host_concurrency)
        )
        try:
            async with asyncio.timeout(BUSY_HOLD):
                await local.acquire()
        except TimeoutError:
            return self._busy(due)
        try:
            return await self._posted(due, host, secret)
        finally:
            local.release()

    def _busy(self, due: DueCallback) -> Verdict:
        """Handed back to the database, due again shortly; not an attempt."""
        now = self.clock()
        return Verdict(
            due.id,
            due.claim_token,
            CallbackState.PENDING,
            now,
            retry_at=now + BUSY_WAIT,
            counted=False,
        )

    async def _posted(self, due: DueCallback, host: str, secret: str) -> Verdict:
        token = token_source.token_hex(8)
        if not await self._slot(host, token):
            return self._busy(due)
        try:
            answer = await post(
                self.client, due, secret, self.settings, self.clock(), self.check_url
            )
        finally:
            try:
                await self.gate.release(host, token)
            except Exception:
                log.warning("callbacks: could not release a host slot", exc_info=True)
        return verdict(due, answer, self.settings, self.clock(), self.rng)

    async def _slot(self, host: str, token: str) -> bool:
        """A slot for one POST to `host` within BUSY_HOLD, or False."""
        waited = 0.0
        while True:
            try:
                if await self.gate.take(host, token) == 1:
                    return True
            except Exception:
                log.warning("callbacks: Redis did not answer the host gate", exc_info=True)
                return False
            if waited >= BUSY_HOLD:
                return False
            await asyncio.sleep(BUSY_POLL)
            waited += BUSY_POLL

    def _record(self, verdicts: Sequence[Verdict]) -> None:
        with self.db.session() as session, session.begin():
            store.record(session, verdicts)
        for v in verdicts:
            if v.counted and v.state is not CallbackState.DELIVERED:
                log.info(
                    "callback %d %s: %s",
                    v.id,
                    "will be retried" if v.state is CallbackState.PENDING else "failed",
                    v.error,
                )

    async def _count(self, due: Sequence[DueCallback], verdicts: Sequence[Verdict]) -> None:
        outcomes: Counter[str] = Counter()
        latencies: list[float] = []
        changed = {d.id: d.changed_at for d in due}
        for v in verdicts:
            if not v.counted:
                continue
            if v.state is CallbackState.DELIVERED:
                outcomes["delivered"] += 1
                latencies.append(max(0.0, (v.at - changed[v.id]).total_seconds()))
            elif v.state is CallbackState.PENDING:
                outcomes["retried"] += 1
            else:
                outcomes["failed"] += 1
        await add_callback_metrics(self.redis, outcomes, latencies)


def sweep(db: Database, clock: Clock, settings: Settings) -> list[int]:
    """Due callbacks not on the broker: marked enqueued, their ids returned."""
    now: datetime = clock()
    with db.session() as session, session.begin():
        return store.enqueue_due(session, now, lease(settings), settings.callback_batch_limit)
