"""Reconciliation: ask vendors about messages whose delivery report never came."""

from __future__ import annotations

from celery import shared_task

from sending.reconcile import reconcile_messages
from workers import names
from workers.periodic import take_turn
from workers.runtime import get_runtime


@shared_task(name=names.RECONCILE)
def reconcile() -> None:
    """Poll status queries for stale `accepted` and `unknown` messages (ids stay in SQL)."""
    rt = get_runtime()
    if take_turn(rt.redis, names.RECONCILE, rt.settings.reconcile_interval_seconds):
        reconcile_messages(rt)
