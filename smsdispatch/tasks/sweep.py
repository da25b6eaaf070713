"""The sweeper: what makes the database, not Redis, the guarantee."""

from __future__ import annotations

from celery import shared_task

from smsdispatch.monitoring.maintenance import counted
from smsdispatch.queueing.periodic import run_periodic
from smsdispatch.sending.sweeper import sweep_outbox
from smsdispatch.vocabulary import names
from smsdispatch.workers.runtime import get_runtime


@shared_task(name=names.SWEEP, send_events=False)
def sweep() -> None:
    """Re-enqueue due retries, rows lost from the broker, and rows of dead workers."""
    rt = get_runtime()
    run_periodic(
        rt.redis,
        names.SWEEP,
        rt.settings.sweep_interval_seconds,
        counted(rt.redis, names.SWEEP, lambda: sweep_outbox(rt)),
    )
