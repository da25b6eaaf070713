"""Logging defaults that keep secrets and personal data out of the logs, and
idle maintenance out of sight.

httpx logs every request URL at INFO; Cue's credentials travel in the query
string and several vendors put the recipient in the URL, so those loggers are
held at WARNING everywhere smsdispatch runs.

Beat sends the sweep and the dispatcher every second and reconciliation every
ten: at INFO Celery wrote three lines per run (beat's "Sending due task", the
worker's "received" and "succeeded"), about 250 lines a minute from an idle
worker and 125 from beat. Those lines are DEBUG now (`quiet_maintenance_runs`):
they show with `--loglevel DEBUG` and not otherwise. A run that did something
says so itself at INFO ("sweep: reclaimed=...", "dispatch: started=...").
A maintenance task that fails is still logged by Celery at ERROR.
"""

from __future__ import annotations

import logging

from smsdispatch.vocabulary import names

NOISY_LOGGERS = ("httpx", "httpcore", "hpack", "uvicorn.access")

MAINTENANCE_TASKS = frozenset(
    {names.SWEEP, names.DISPATCH, names.RECONCILE, names.REBALANCE, names.CALLBACKS_SWEEP}
)
# Where Celery logs a task's receipt, success, and beat's sending of it.
CELERY_TASK_LOGGERS = ("celery.app.trace", "celery.worker.strategy", "celery.beat")
BEAT_SENDING = "Scheduler: Sending due task"


def quiet_third_party_loggers() -> None:
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


class MaintenanceRunsAtDebug(logging.Filter):
    """Celery's INFO lines about a maintenance task, lowered to DEBUG: kept
    (as DEBUG) where the logger is enabled for DEBUG, dropped otherwise."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not is_maintenance_line(record):
            return True
        if not logging.getLogger(record.name).isEnabledFor(logging.DEBUG):
            return False
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


def is_maintenance_line(record: logging.LogRecord) -> bool:
    # The worker's lines carry the task in `extra={"data": {...}}`; beat's
    # "Sending due task %s (%s)" has the entry and the task as its arguments.
    data = getattr(record, "data", None)
    if isinstance(data, dict):
        return data.get("name") in MAINTENANCE_TASKS
    if isinstance(record.msg, str) and record.msg.startswith(BEAT_SENDING):
        args = record.args if isinstance(record.args, tuple) else ()
        return bool(args) and args[-1] in MAINTENANCE_TASKS
    return False


_FILTER = MaintenanceRunsAtDebug()


def quiet_maintenance_runs() -> None:
    """Celery's per-run lines of the maintenance tasks at DEBUG (idempotent)."""
    for name in CELERY_TASK_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def configure(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_third_party_loggers()
