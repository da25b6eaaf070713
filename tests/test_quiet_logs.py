"""Celery's per-run lines of the maintenance tasks are DEBUG; a send's stay INFO."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from smsdispatch.config.logs import quiet_maintenance_runs
from smsdispatch.vocabulary import names
from smsdispatch.workers.app import _no_sent_events_from_beat, create_app
from tests.settings import make_settings

RECEIVED = "Task %(name)s[%(id)s] received"


class Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def kept() -> Iterator[Kept]:
    quiet_maintenance_runs()
    handler = Kept()
    celery = logging.getLogger("celery")
    before = celery.level
    celery.addHandler(handler)
    celery.setLevel(logging.INFO)  # as `--loglevel INFO` leaves it
    yield handler
    celery.removeHandler(handler)
    celery.setLevel(before)


def received(task: str) -> None:
    context = {"name": task, "id": "abc"}
    logging.getLogger("celery.worker.strategy").info(RECEIVED, context, extra={"data": context})


def test_a_maintenance_run_says_nothing_at_info(kept: Kept) -> None:
    for task in (names.SWEEP, names.DISPATCH, names.RECONCILE, names.REBALANCE):
        received(task)
    logging.getLogger("celery.beat").info(
        "Scheduler: Sending due task %s (%s)", "sweep-outbox", names.SWEEP
    )
    assert kept.records == []


def test_a_send_is_still_logged_at_info(kept: Kept) -> None:
    received(names.SEND)
    [record] = kept.records
    assert record.levelno == logging.INFO
    assert record.getMessage() == f"Task {names.SEND}[abc] received"


def test_a_maintenance_run_shows_at_debug_when_debug_is_on(kept: Kept) -> None:
    logging.getLogger("celery").setLevel(logging.DEBUG)
    received(names.SWEEP)
    [record] = kept.records
    assert (record.levelno, record.levelname) == (logging.DEBUG, "DEBUG")


def test_a_failed_maintenance_run_is_still_an_error(kept: Kept) -> None:
    context = {"name": names.SWEEP, "id": "abc", "description": "raised", "exc": "boom"}
    logging.getLogger("celery.app.trace").error(
        "Task %(name)s[%(id)s] %(description)s: %(exc)s", context, extra={"data": context}
    )
    [record] = kept.records
    assert record.levelno == logging.ERROR


def test_maintenance_tasks_send_no_events_and_beat_no_sent_events() -> None:
    app = create_app(make_settings())
    app.loader.import_default_modules()
    for task in (names.SWEEP, names.DISPATCH, names.RECONCILE, names.REBALANCE):
        assert app.tasks[task].send_events is False, task
    assert app.tasks[names.SEND].send_events is True
    assert app.conf.task_send_sent_event is True  # the API's and the sweeper's sends

    class Beat:
        pass

    beat = Beat()
    beat.app = app  # type: ignore[attr-defined]
    _no_sent_events_from_beat(sender=beat)
    assert app.conf.task_send_sent_event is False
