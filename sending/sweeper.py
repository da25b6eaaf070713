"""Re-enqueue what the broker lost or what is due again.

Runs from beat every `sweep_interval_seconds`. Three kinds of rows come back:
retries whose `next_attempt_at` has come (long waits live here, not in Celery
countdowns), rows enqueued so long ago that their broker message must be gone
(Redis restarted empty), and rows a killed worker left in `sending`. And
`unknown` rows nothing confirmed within `unknown_deadline_seconds` are failed
as unconfirmed, so every message ends in a final state.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from store.outbox import reclaim_stuck, settle_unconfirmed, take_due
from workers.publish import publish
from workers.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SweepResult:
    reclaimed: int
    enqueued: int
    unconfirmed: int


def sweep_outbox(rt: Runtime) -> SweepResult:
    s = rt.settings
    now = rt.clock()
    with rt.db.session() as session, session.begin():
        max_attempts = {p: e.retry.max_attempts for p, e in rt.catalog.providers.items()}
        reclaimed = reclaim_stuck(session, now, s.sending_deadline_seconds, max_attempts)
        due = take_due(session, now, s.requeue_after_seconds, s.sweep_batch_limit)
        unconfirmed = settle_unconfirmed(session, now, s.unknown_deadline_seconds)
    if due:
        publish(rt.celery, rt.catalog, due)
    if reclaimed or due or unconfirmed:
        log.info("sweep: reclaimed=%d enqueued=%d unconfirmed=%d", reclaimed, len(due), unconfirmed)
    return SweepResult(reclaimed, len(due), unconfirmed)
