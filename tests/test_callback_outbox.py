"""The trigger writes a status callback with every public status change, in
the change's own transaction, on SQLite and PostgreSQL; the outbox hands
them out in order, claims them once and records verdicts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from smsdispatch.config.catalog import ProviderEntry
from smsdispatch.config.routes import RouteVendor
from smsdispatch.sending.failover import moved
from smsdispatch.sending.transitions import plan_update
from smsdispatch.store import callbacks as store
from smsdispatch.store.callbacks import CallbackState, Verdict
from smsdispatch.store.db import Database
from smsdispatch.store.models import messages, status_callbacks
from smsdispatch.store.outbox import apply_updates, claim, settle_unconfirmed
from smsdispatch.store.reports import apply_report
from smsdispatch.vocabulary.delivery import DeliveryReport
from smsdispatch.vocabulary.outcomes import Outcome
from smsdispatch.vocabulary.status import MessageStatus
from tests.test_outbox import NOW, add_rows

URL = "https://client.example/callbacks"
LEASE = timedelta(seconds=20)


def callbacks_of(db: Database, mid: int) -> list[tuple[str, str, str | None]]:
    c = status_callbacks.c
    with db.session() as s:
        rows = s.execute(
            select(c.event, c.status, c.tracking_id).where(c.message_id == mid).order_by(c.id)
        )
        return [tuple(r) for r in rows]


def accept(db: Database, mid: int, tracking: str = "T1") -> None:
    with db.session() as s, s.begin():
        [row] = claim(s, [mid], NOW, "t1")
        update_ = plan_update(row.ref, Outcome.accepted(tracking), ProviderEntry(name="cue"), NOW)
        apply_updates(s, [update_], NOW)


def test_a_send_result_writes_one_callback_and_claiming_writes_none(database: Database) -> None:
    [mid] = add_rows(database, 1, status_callback=URL)
    accept(database, mid)
    assert callbacks_of(database, mid) == [("status", "accepted", "T1")]


def test_a_message_without_a_callback_url_writes_none(database: Database) -> None:
    [mid] = add_rows(database, 1)
    accept(database, mid)
    assert callbacks_of(database, mid) == []


def test_a_delivery_report_writes_a_callback_with_its_final_status(database: Database) -> None:
    [mid] = add_rows(database, 1, status_callback=URL)
    accept(database, mid, "T7")
    report = DeliveryReport(MessageStatus.UNDELIVERED, "UNDELIV", tracking_id="T7", error_code="34")
    with database.session() as s, s.begin():
        apply_report(s, "cue", report, NOW + timedelta(seconds=1))
    with database.session() as s:
        codes = s.scalars(
            select(status_callbacks.c.error_code).where(status_callbacks.c.message_id == mid)
        ).all()
    assert callbacks_of(database, mid) == [
        ("status", "accepted", "T7"),
        ("status", "undelivered", "T7"),
    ]
    assert codes == [None, "34"]


def test_the_sweepers_unconfirmed_deadline_writes_a_failed_callback(database: Database) -> None:
    [mid] = add_rows(database, 1, status_callback=URL)
    with database.session() as s, s.begin():
        s.execute(
            update(messages)
            .where(messages.c.id == mid)
            .values(status="unknown", sent_at=NOW - timedelta(days=2))
        )
        settle_unconfirmed(s, NOW, deadline_seconds=86400)
    assert callbacks_of(database, mid) == [
        ("status", "unknown", None),
        ("status", "failed", None),
    ]


def test_a_rolled_back_status_change_leaves_no_callback(database: Database) -> None:
    [mid] = add_rows(database, 1, status_callback=URL)
    with database.session() as s:
        s.begin()
        s.execute(update(messages).where(messages.c.id == mid).values(status="delivered"))
        s.rollback()
    assert callbacks_of(database, mid) == []


def test_a_routed_message_moving_to_another_vendor_writes_a_vendor_callback(
    database: Database,
) -> None:
    [routed] = add_rows(database, 1, status_callback=URL, route="za")
    [named] = add_rows(database, 1, status_callback=URL)
    with database.session() as s, s.begin():
        s.execute(
            update(messages).where(messages.c.id.in_([routed, named])).values(provider="messangi")
        )
    assert callbacks_of(database, routed) == [("vendor", "queued", None)]
    assert callbacks_of(database, named) == []


def test_a_failover_move_of_a_claimed_message_is_a_vendor_event_not_a_queued_status(
    database: Database,
) -> None:
    [mid] = add_rows(database, 1, status_callback=URL, route="default")
    with database.session() as s, s.begin():
        [row] = claim(s, [mid], NOW, "t1")
    target = RouteVendor(vendor="messangi", sender="12345", weight=25)
    move = moved(row.ref, target, NOW, "cue: 503", "503", refund=False)
    with database.session() as s, s.begin():
        apply_updates(s, [move], NOW)
    assert callbacks_of(database, mid) == [("vendor", "queued", None)]


def test_a_messages_later_callback_waits_until_its_earlier_one_is_settled(
    database: Database,
) -> None:
    [mid] = add_rows(database, 1, status_callback=URL)
    accept(database, mid)
    with database.session() as s, s.begin():
        s.execute(update(messages).where(messages.c.id == mid).values(status="delivered"))
    with database.session() as s, s.begin():
        first = store.enqueue_due(s, NOW, LEASE, 100)
    with database.session() as s, s.begin():
        assert store.enqueue_due(s, NOW, LEASE, 100) == []
        [due] = store.claim(s, first, NOW, "tok", LEASE)
        store.record(s, [Verdict(due.id, "tok", CallbackState.DELIVERED, NOW, 200)])
    with database.session() as s, s.begin():
        second = store.enqueue_due(s, NOW, LEASE, 100)
    assert len(first) == len(second) == 1
    assert second[0] > first[0]


def test_a_callback_is_claimed_once_and_a_stale_token_records_nothing(
    database: Database,
) -> None:
    [mid] = add_rows(database, 1, status_callback=URL, client_reference="order-1")
    accept(database, mid)
    with database.session() as s, s.begin():
        ids = store.enqueue_due(s, NOW, LEASE, 100)
        [due] = store.claim(s, ids, NOW, "tok", LEASE)
        assert store.claim(s, ids, NOW, "other", LEASE) == []
        assert store.record(s, [Verdict(due.id, "other", CallbackState.FAILED, NOW)]) == 0
    assert (due.client_reference, due.attempts, due.status) == ("order-1", 1, "accepted")


def test_a_failed_callback_is_listed_and_replayed_with_a_fresh_period(
    database: Database,
) -> None:
    [mid] = add_rows(database, 1, status_callback=URL)
    accept(database, mid)
    later = NOW + timedelta(hours=30)
    with database.session() as s, s.begin():
        [due] = store.claim(s, store.enqueue_due(s, NOW, LEASE, 100), NOW, "tok", LEASE)
        store.record(s, [Verdict(due.id, "tok", CallbackState.FAILED, NOW, 410, "HTTP 410")])
    with database.session() as s, s.begin():
        [failed] = store.list_callbacks(s, "failed")
        assert store.replay(s, [failed.id], later) == [failed.id]
        assert store.list_callbacks(s, "failed") == []
        [again] = store.claim(s, store.enqueue_due(s, later, LEASE, 100), later, "t2", LEASE)
    assert (failed.response_status, failed.last_error) == (410, "HTTP 410")
    assert (again.attempts, again.retry_from) == (1, later)


@pytest.mark.parametrize("status", ["held", "queued", "sending"])
def test_an_internal_status_writes_no_callback(database: Database, status: str) -> None:
    [mid] = add_rows(database, 1, status_callback=URL, status="accepted")
    with database.session() as s, s.begin():
        s.execute(update(messages).where(messages.c.id == mid).values(status=status))
    assert callbacks_of(database, mid) == []


def test_the_callbacks_change_time_is_the_rows_database_clock_stamp(database: Database) -> None:
    [mid] = add_rows(database, 1, status_callback=URL)
    stamp = datetime(2026, 11, 22, 12, 0, 7, 250000, tzinfo=UTC)
    with database.session() as s, s.begin():
        s.execute(
            update(messages)
            .where(messages.c.id == mid)
            .values(status="cancelled", updated_at=stamp)
        )
    with database.session() as s:
        got = s.execute(
            select(status_callbacks.c.changed_at, status_callbacks.c.next_attempt_at)
        ).one()
    assert tuple(got) == (stamp, stamp)
