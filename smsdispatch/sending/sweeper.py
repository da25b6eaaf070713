"""Re-enqueue what the broker lost or what is due again; recover what workers left.

Runs from beat every `sweep_interval_seconds`. In order:

1. Results a worker handed over because it could not reach the database
   (sending/journal.py) are written, once the database is back.
2. Rows left in `sending` past `sending_deadline_seconds` (their worker died)
   get the result their worker kept, if it did; the rest are sent
   again, or, where the vendor can be asked what it took (Restcomm's list
   by To, From and date), become `unknown` for reconciliation to ask first
   (reports/reconcile.py). Each is counted by how it was recovered.
3. Retries whose `next_attempt_at` has come (long waits live here, not in
   Celery countdowns) and rows enqueued so long ago that their broker
   message must be gone (Redis restarted empty) are enqueued again.
4. `unknown` rows nothing confirmed within `unknown_deadline_seconds` fail
   as unconfirmed, so every message ends in a final state.

Step 2 needs the journal: while Redis cannot be read, no stuck row is
reclaimed (its result may be there), and the sweep does the rest. One sweep
runs at a time (a Redis lock).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from smsdispatch.config.catalog import ProviderEntry
from smsdispatch.providers.registry import searchable
from smsdispatch.queueing.periodic import exclusive, take_turn
from smsdispatch.queueing.publish import publish
from smsdispatch.queueing.services import Services
from smsdispatch.sending import journal
from smsdispatch.store.models import messages
from smsdispatch.store.outbox import (
    reclaim,
    settle_unconfirmed,
    stuck_rows,
    take_due,
    write_results_once,
)
from smsdispatch.store.results import SendResult, claim_key
from smsdispatch.vocabulary import keys
from smsdispatch.vocabulary.status import MessageStatus

log = logging.getLogger(__name__)

# How often the journal is checked for copies whose batch was written but
# whose removal failed.
PRUNE_PERIOD_SECONDS = 60.0


@dataclass
class SweepResult:
    reclaimed: int = 0
    enqueued: int = 0
    unconfirmed: int = 0
    # (provider, how): "orphaned", "journaled", and smsdispatch.store.outbox.Reclaim values.
    recovered: Counter[tuple[str, str]] = field(default_factory=Counter)


def sweep_outbox(rt: Services) -> SweepResult:
    """One sweep; skipped while another runs (two would each reclaim the rows
    the other is writing the kept results of)."""
    try:
        with exclusive(rt.redis, keys.SWEEP_LOCK, rt.settings.sending_deadline_seconds) as held:
            if not held:
                return SweepResult()
            return _sweep(rt, redis_ok=True)
    except redis.RedisError:
        log.warning("sweep: Redis unreachable; stuck rows wait until it answers")
        return _sweep(rt, redis_ok=False)


def _sweep(rt: Services, *, redis_ok: bool) -> SweepResult:
    s = rt.settings
    now = rt.clock()
    result = SweepResult()
    # Without Redis, no stuck row is reclaimed: its result may be kept there.
    redis_ok = redis_ok and _write_orphans(rt, now, result)
    with rt.db.session() as session, session.begin():
        written: list[str] = []
        if redis_ok:
            written = _reclaim_stuck(rt, session, now, result)
        due = take_due(session, now, s.requeue_after_seconds, s.sweep_batch_limit)
        result.unconfirmed = settle_unconfirmed(session, now, s.unknown_deadline_seconds)
        if due:
            # Before the commit: a broker that refuses rolls back `enqueued_at`,
            # so the next sweep tries them again instead of after the requeue wait.
            publish(rt.celery, rt.catalog, due)
    result.enqueued = len(due)
    _forget(rt.redis, keys.JOURNAL, written)
    if redis_ok and take_turn(rt.redis, "journal-prune", PRUNE_PERIOD_SECONDS, share=1.0):
        _prune_journal(rt)
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


def _write_orphans(rt: Services, now: datetime, result: SweepResult) -> bool:
    """Write results handed over by workers that lost the database; False if
    Redis could not be read."""
    try:
        orphaned = journal.orphans(rt.redis, rt.settings.sweep_batch_limit)
    except redis.RedisError:
        log.warning("sweep: Redis unreachable; stuck rows wait until it answers")
        return False
    if not orphaned:
        return True
    with rt.db.session() as session, session.begin():
        providers = _providers(session, [r.update.id for r in orphaned])
        write_results_once(session, orphaned, now)
    # Written, or no longer wanted (the row moved on): either way done.
    _forget(rt.redis, keys.ORPHANED, [r.claim for r in orphaned])
    result.recovered.update((providers.get(r.update.id, "?"), "orphaned") for r in orphaned)
    return True


def _reclaim_stuck(rt: Services, session: Session, now: datetime, result: SweepResult) -> list[str]:
    """Recover rows whose worker died; return the journal claims written."""
    s = rt.settings
    stuck = stuck_rows(session, now, s.sending_deadline_seconds, s.sweep_batch_limit)
    if not stuck:
        return []
    try:
        kept = journal.kept(rt.redis, [row.claim for row in stuck])
    except redis.RedisError:
        log.warning("sweep: Redis unreachable; %d stuck rows wait", len(stuck))
        return []
    written = write_results_once(session, list(kept.values()), now)
    result.recovered.update((row.provider, "journaled") for row in stuck if row.claim in written)
    rest = [row for row in stuck if row.claim not in written]
    decided = reclaim(
        session,
        rest,
        now,
        ask_first=searchable(rt.catalog.providers),
        max_attempts=lambda provider: _entry(rt, provider).retry.max_attempts,
    )
    result.recovered.update({(p, how.value): n for (p, how), n in decided.items()})
    result.reclaimed = len(rest)
    return list(kept)


def _entry(rt: Services, provider: str) -> ProviderEntry:
    # A vendor since removed from the catalog keeps the default retry policy.
    return rt.catalog.providers.get(provider) or ProviderEntry(name=provider)


def _providers(session: Session, ids: Sequence[int]) -> dict[int, str]:
    m = messages.c
    rows = session.execute(select(m.id, m.provider).where(m.id.in_(ids)))
    return {mid: provider for mid, provider in rows}


def _prune_journal(rt: Services) -> None:
    """Drop journal copies whose batch reached the database but whose removal
    failed (Redis blinked): those whose row is no longer `sending` under
    their claim. A worker's copies are made after its claim committed, so a
    live batch's row is always `sending` under its claim."""
    try:
        sample = journal.journal_sample(rt.redis, 1000)
    except redis.RedisError:
        return
    if not sample:
        return
    live = _still_sending(rt, sample)
    _forget(rt.redis, keys.JOURNAL, [r.claim for r in sample if r.claim not in live])


def _still_sending(rt: Services, results: Sequence[SendResult]) -> set[str]:
    m = messages.c
    with rt.db.session() as session:
        rows = session.execute(
            select(m.id, m.claim_token).where(
                m.id.in_([r.update.id for r in results]), m.status == MessageStatus.SENDING
            )
        )
        return {claim_key(mid, token) for mid, token in rows}


def _forget(client: redis.Redis, key: str, claims: Sequence[str]) -> None:
    try:
        journal.forget(client, key, claims)
    except redis.RedisError:
        log.warning("sweep: could not clear %d recovered results from Redis", len(claims))


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
