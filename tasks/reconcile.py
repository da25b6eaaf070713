"""Reconciliation: ask vendors about messages whose delivery report never came."""

from __future__ import annotations

from celery import shared_task

from sending.reconcile import reconcile_messages
from workers import names
from workers.runtime import get_runtime


@shared_task(name=names.RECONCILE)
def reconcile() -> None:
    """Poll status queries for stale `accepted` and `unknown` messages (ids stay in SQL)."""
    reconcile_messages(get_runtime())
