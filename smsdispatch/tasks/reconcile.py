"""Reconciliation: ask vendors about messages whose delivery report never came."""

from __future__ import annotations

from celery import shared_task

from smsdispatch.monitoring.maintenance import counted
from smsdispatch.queueing.periodic import run_periodic
from smsdispatch.reports.reconcile import reconcile_messages
from smsdispatch.vocabulary import names
from smsdispatch.workers.runtime import get_runtime


@shared_task(name=names.RECONCILE, send_events=False)
def reconcile() -> None:
    """Poll status queries for stale `accepted` and `unknown` messages (ids stay in SQL)."""
    rt = get_runtime()
    run_periodic(
        rt.redis,
        names.RECONCILE,
        rt.settings.reconcile_interval_seconds,
        counted(rt.redis, names.RECONCILE, lambda: reconcile_messages(rt)),
    )
