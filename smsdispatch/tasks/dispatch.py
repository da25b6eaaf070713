"""The campaign dispatcher: starts due campaigns and releases their messages."""

from __future__ import annotations

from celery import shared_task

from smsdispatch.campaigns.dispatcher import dispatch_campaigns
from smsdispatch.monitoring.maintenance import counted
from smsdispatch.queueing.periodic import run_periodic
from smsdispatch.vocabulary import names
from smsdispatch.workers.runtime import get_runtime


@shared_task(name=names.DISPATCH, send_events=False)
def dispatch() -> None:
    """Start, top up, end and complete campaigns (see campaigns/dispatcher.py)."""
    rt = get_runtime()
    run_periodic(
        rt.redis,
        names.DISPATCH,
        rt.settings.dispatch_interval_seconds,
        counted(rt.redis, names.DISPATCH, lambda: dispatch_campaigns(rt)),
    )
