"""Routing's weights follow vendor health: step failing vendors down, recovered ones back."""

from __future__ import annotations

import logging

from celery import shared_task

from smsdispatch.monitoring.maintenance import counted
from smsdispatch.queueing.periodic import run_periodic
from smsdispatch.routing.weights import rebalance_routes
from smsdispatch.vocabulary import names
from smsdispatch.workers.runtime import get_runtime

log = logging.getLogger(__name__)


@shared_task(name=names.REBALANCE, send_events=False)
def rebalance() -> None:
    """Move routes' weights by health (routing/weights.py); a move logs its reason at INFO."""
    rt = get_runtime()

    def job() -> None:
        for route, vendors in rebalance_routes(rt.catalog, rt.redis).items():
            log.info("rebalance: route %s moved %s", route, ", ".join(vendors))

    run_periodic(
        rt.redis,
        names.REBALANCE,
        rt.settings.rebalance_interval_seconds,
        counted(rt.redis, names.REBALANCE, job),
    )
