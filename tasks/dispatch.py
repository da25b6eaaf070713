"""The campaign dispatcher: starts due campaigns and releases their messages."""

from __future__ import annotations

from celery import shared_task

from campaigns.dispatcher import dispatch_campaigns
from workers import names
from workers.runtime import get_runtime


@shared_task(name=names.DISPATCH)
def dispatch() -> None:
    """Start, top up, end and complete campaigns (see campaigns/dispatcher.py)."""
    dispatch_campaigns(get_runtime())
