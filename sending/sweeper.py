"""Re-enqueue what the broker lost or what is due again; recover what workers left.

Runs from beat every `sweep_interval_seconds`. In order:

1. Answers a worker handed over because it could not reach the database
   (sending/journal.py) are written, once the database is back.
2. Rows left in `sending` past `sending_deadline_seconds` (their worker died)
   get the answer their worker journaled, if it did; the rest are sent
   again, or, where the vendor can be asked what it took (Restcomm's list
   by To, From and date), become `unknown` for reconciliation to ask first
   (sending/reconcile.py). Each is counted by how it was recovered.
3. Retries whose `next_attempt_at` has come (long waits live here, not in
   Celery countdowns) and rows enqueued so long ago that their broker
   message must be gone (Redis restarted empty) are enqueued again.
4. `unknown` rows nothing confirmed within `unknown_deadline_seconds` fail
   as unconfirmed, so every message ends in a final state.

Step 2 needs the journal: while Redis cannot be read, no stuck row is
reclaimed (its answer may be there), and the sweep does the rest.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from config.catalog import ProviderEntry
from providers.registry import ADAPTERS
from sending import journal
from sending.journal import Answer
from sending.transitions import result_of
from store.models import messages
from store.outbox import (
    reclaim,
    settle_unconfirmed,
    stuck_rows,
    take_due,
    write_results_once,
)
from store.results import claim_key
from store.status import MessageStatus
from workers import keys
from workers.periodic import take_turn
from workers.publish import publish
from workers.runtime import Runtime

log = logging.getLogger(__name__)

# How often the journal is checked for copies whose removal failed.
PRUNE_PERIOD_SECONDS = 60.0


@dataclass
class SweepResult:
    reclaimed: int = 0
    enqueued: int = 0
    unconfirmed: int = 0
    # (provider, how): "orphaned", "journaled", and store.outbox.Reclaim values.
    recovered: Counter[tuple[str, str]] = field(default_factory=Counter)


def sweep_outbox(rt: Runtime) -> SweepResult:
    s = rt.settings
    now = rt.clock()
    result = SweepResult()
    redis_ok = _write_orphans(rt, now, result)
    with rt.db.session() as session, session.begin():
        written: list[str] = []
        if redis_ok:
            written = _reclaim_stuck(rt, session, now, result)
        due = take_due(session, now, s.requeue_after_seconds, s.sweep_batch_limit)
        result.unconfirmed = settle_unconfirmed(session, now, s.unknown_deadline_seconds)
    _forget(rt.redis, keys.JOURNAL, written)
    if due:
        publish(rt.celery, rt.catalog, due)
    result.enqueued = len(due)
    if redis_ok and take_turn(rt.redis, "journal-prune", PRUNE_PERIOD_SECONDS, share=1.0):
        _prune_journal(rt, now)
    _count(rt.redis, result.recovered)
    if result.reclaimed or due or result.unconfirmed or result.recovered:
        log.info(
            "sweep: reclaimed=%d enqueued=%d unconfirmed=%d recovered=%s",
            result.reclaimed,
            len(due),
            result.unconfirmed,
            {f"{p}|{how}": n for (p, how), n in result.recovered.items()},
        )
    return result


def _entry(rt: Runtime, provider: str) -> ProviderEntry:
    # An answer outlives a catalog change: a vendor since removed still has
    # its answer written, with the default retry policy.
    return rt.catalog.providers.get(provider) or ProviderEntry(name=provider)


def _write_orphans(rt: Runtime, now: datetime, result: SweepResult) -> bool:
    """Write answers handed over by workers that lost the database; False if
    Redis could not be read."""
    try:
        answers = journal.orphans(rt.redis, rt.settings.sweep_batch_limit)
    except redis.RedisError:
        log.warning("sweep: Redis unreachable; stuck rows wait until it answers")
        return False
    if not answers:
        return True
    with rt.db.session() as session, session.begin():
        write_results_once(session, [result_of(a, _entry(rt, a.provider)) for a in answers], now)
    # Written, or no longer wanted (the row moved on): either way done.
    _forget(rt.redis, keys.ORPHANED, [a.claim for a in answers])
    result.recovered.update((a.provider, "orphaned") for a in answers)
    return True


def _reclaim_stuck(rt: Runtime, session: Session, now: datetime, result: SweepResult) -> list[str]:
    """Recover rows whose worker died; return the journal claims written."""
    s = rt.settings
    stuck = stuck_rows(session, now, s.sending_deadline_seconds, s.sweep_batch_limit)
    if not stuck:
        return []
    try:
        kept = journal.journaled(rt.redis, [row.claim for row in stuck])
    except redis.RedisError:
        log.warning("sweep: Redis unreachable; %d stuck rows wait", len(stuck))
        return []
    written = write_results_once(session, [result_of(a, _entry(rt, a.provider)) for a in kept], now)
    result.recovered.update((a.provider, "journaled") for a in kept if a.claim in written)
    rest = [row for row in stuck if row.claim not in written]
    decided = reclaim(
        session,
        rest,
        now,
        ask_first=searchable(rt),
        max_attempts={p: e.retry.max_attempts for p, e in rt.catalog.providers.items()},
    )
    result.recovered.update({(p, how.value): n for (p, how), n in decided.items()})
    result.reclaimed = len(rest)
    return [a.claim for a in kept]


def searchable(rt: Runtime) -> set[str]:
    """Vendors that can be asked whether they took a message we lost track of."""
    return {p for p in rt.catalog.providers if ADAPTERS[p].supports_sent_search}


def _prune_journal(rt: Runtime, now: datetime) -> None:
    """Drop journal copies whose batch reached the database but whose removal
    failed (Redis blinked): any whose row is no longer `sending` under that
    claim, once they are older than a worker could still be writing them."""
    old = now - timedelta(seconds=rt.settings.sending_deadline_seconds * 2)
    try:
        sample = [a for a in journal.journal_sample(rt.redis, 1000) if a.at < old]
    except redis.RedisError:
        return
    if not sample:
        return
    live = _still_sending(rt, sample)
    _forget(rt.redis, keys.JOURNAL, [a.claim for a in sample if a.claim not in live])


def _still_sending(rt: Runtime, answers: Sequence[Answer]) -> set[str]:
    m = messages.c
    with rt.db.session() as session:
        rows = session.execute(
            select(m.id, m.attempts).where(
                m.id.in_([a.message_id for a in answers]), m.status == MessageStatus.SENDING
            )
        )
        return {claim_key(mid, attempts) for mid, attempts in rows}


def _forget(client: redis.Redis, key: str, claims: Sequence[str]) -> None:
    try:
        journal.forget(client, key, claims)
    except redis.RedisError:
        log.warning("sweep: could not clear %d recovered answers from Redis", len(claims))


def _count(client: redis.Redis, recovered: Counter[tuple[str, str]]) -> None:
    if not recovered:
        return
    try:
        pipe = client.pipeline(transaction=False)
        for (provider, how), n in recovered.items():
            pipe.hincrby(keys.METRICS_RECOVERIES, f"{provider}|{how}", n)
        pipe.execute()
    except redis.RedisError:
        log.warning("sweep: could not count recoveries in Redis")
