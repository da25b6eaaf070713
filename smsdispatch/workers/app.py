"""The Celery application.

Run a worker per vendor queue (or one for all of them):

    celery -A smsdispatch.workers.app worker -Q sms.cue,sms.default -P threads -c 8
    celery -A smsdispatch.workers.app beat

Choices and why:
- JSON only, ids only: nothing but message ids crosses the broker, so Flower
  and Redis never hold a phone number, a text or a credential.
- acks_late + reject_on_worker_lost: a task's message is acknowledged after
  the rows are persisted. The database, not Redis, is what guarantees that
  nothing is lost (the sweeper re-enqueues stale rows); claiming makes a
  redelivered task harmless.
- No result backend: results live in SQL.
- The thread pool, one process per core: a process's tasks run their
  vendor calls on its one asyncio loop with a pooled httpx client
  (workers/runtime.py), so a task waiting for one vendor's limiter slot
  never keeps another vendor's task from sending (README, "Every vendor's
  ceiling at once").
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery, signals
from kombu.entity import Queue

from smsdispatch.config.catalog import load_catalog
from smsdispatch.config.garbage import collect_less
from smsdispatch.config.logs import quiet_maintenance_runs, quiet_third_party_loggers
from smsdispatch.config.settings import Settings, get_settings, warn_unconfigured
from smsdispatch.vocabulary import names

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> Celery:
    catalog = load_catalog(settings.catalog_path)
    app = Celery(
        "smsdispatch",
        include=[
            "smsdispatch.tasks.send",
            "smsdispatch.tasks.sweep",
            "smsdispatch.tasks.dispatch",
            "smsdispatch.tasks.reconcile",
            "smsdispatch.tasks.rebalance",
            "smsdispatch.tasks.callbacks",
        ],
    )
    queues = [Queue(names.provider_queue(p, lane)) for p in catalog.providers for lane in (0, 1)]
    queues += [
        Queue(names.DEFAULT_QUEUE),
        Queue(names.MAINTENANCE_QUEUE),
        Queue(names.CALLBACKS_QUEUE),
    ]
    app.conf.update(
        broker_url=settings.redis_url,
        broker_connection_retry_on_startup=True,
        # Long enough that a slow batch is never redelivered while it runs;
        # lost messages are the sweeper's job, not the visibility timeout's.
        broker_transport_options={"visibility_timeout": 900},
        task_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        worker_prefetch_multiplier=2,
        task_queues=queues,
        task_default_queue=names.DEFAULT_QUEUE,
        task_routes={
            names.SWEEP: {"queue": names.MAINTENANCE_QUEUE},
            names.DISPATCH: {"queue": names.MAINTENANCE_QUEUE},
            names.RECONCILE: {"queue": names.MAINTENANCE_QUEUE},
            names.REBALANCE: {"queue": names.MAINTENANCE_QUEUE},
            names.CALLBACKS_SWEEP: {"queue": names.CALLBACKS_QUEUE},
            names.CALLBACKS_DELIVER: {"queue": names.CALLBACKS_QUEUE},
        },
        # Events for Flower: sends only; the maintenance tasks set
        # `send_events = False` and beat sends no "task-sent" (below).
        worker_send_task_events=True,
        task_send_sent_event=True,
        # No `expires` on beat's tasks: it compares beat's clock with the
        # worker's. A backlog of them runs once per period (queueing/periodic.py).
        beat_schedule={
            "sweep-outbox": {
                "task": names.SWEEP,
                "schedule": settings.sweep_interval_seconds,
            },
            "dispatch-campaigns": {
                "task": names.DISPATCH,
                "schedule": settings.dispatch_interval_seconds,
            },
            # Status queries for messages whose delivery report never came.
            "reconcile-reports": {
                "task": names.RECONCILE,
                "schedule": settings.reconcile_interval_seconds,
            },
            # Routes' weights follow vendor health.
            "rebalance-routes": {
                "task": names.REBALANCE,
                "schedule": settings.rebalance_interval_seconds,
            },
            # Status callbacks to client applications (tasks/callbacks.py).
            "sweep-callbacks": {
                "task": names.CALLBACKS_SWEEP,
                "schedule": settings.callback_interval_seconds,
            },
        },
        timezone="UTC",
    )
    return app


@signals.after_setup_logger.connect
@signals.after_setup_task_logger.connect
def _quiet_loggers(**_: Any) -> None:
    quiet_third_party_loggers()
    quiet_maintenance_runs()


@signals.beat_init.connect
def _no_sent_events_from_beat(sender: Any = None, **_: Any) -> None:
    """Beat sends only maintenance tasks, which stay out of Flower: their
    tasks set `send_events = False` (tasks/), which the worker honours, but
    the "task-sent" event is the publisher's, on for every task
    (`task_send_sent_event`, for the sends). Beat alone turns it off."""
    (sender.app if sender is not None else app).conf.task_send_sent_event = False


@signals.worker_ready.connect
@signals.worker_process_init.connect
def _collect_less(**_: Any) -> None:
    """Once the worker (a thread pool's one process, or each prefork child)
    has imported and built what it serves with (config/garbage.py)."""
    collect_less()


@signals.celeryd_after_setup.connect
def _say_which_vendors_cannot_send(**_: Any) -> None:
    """At start-up, once logging is set up: a vendor of the catalog without its
    base URL or credentials would otherwise show only as a pause later."""
    settings = get_settings()
    warn_unconfigured(settings, load_catalog(settings.catalog_path).providers, log)


app = create_app(get_settings())
