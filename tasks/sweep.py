"""The sweeper: what makes the database, not Redis, the guarantee."""

from __future__ import annotations

from celery import shared_task

from sending.sweeper import sweep_outbox
from workers import names
from workers.periodic import take_turn
from workers.runtime import get_runtime


@shared_task(name=names.SWEEP)
def sweep() -> None:
    """Re-enqueue due retries, rows lost from the broker, and rows of dead workers."""
    rt = get_runtime()
    if take_turn(rt.redis, names.SWEEP, rt.settings.sweep_interval_seconds):
        sweep_outbox(rt)
