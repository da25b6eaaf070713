"""Claiming, persisting and sweeping rows, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import String, insert, select, update
from sqlalchemy.orm import Session

from smsdispatch.config.catalog import ProviderEntry
from smsdispatch.sending.transitions import plan_update, result_of
from smsdispatch.store.db import Database
from smsdispatch.store.models import messages, send_attempts
from smsdispatch.store.outbox import (
    Stuck,
    apply_updates,
    claim,
    reclaim,
    settle_unconfirmed,
    stuck_rows,
    take_due,
    write_results,
    write_results_once,
)
from smsdispatch.store.results import ClaimRef, SendResult
from smsdispatch.vocabulary.outcomes import Outcome, OutcomeKind
from smsdispatch.vocabulary.status import MessageStatus

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def add_rows(db: Database, count: int, *, at: datetime = NOW, **values: object) -> list[int]:
    rows = [
        {
            "provider": "cue",
            "sender": "CUESMS",
            "recipient": f"+2782123{i:04d}",
            "text": "hi",
            "encoding": "gsm7",
            "segments": 1,
            "status": "queued",
            "attempts": 0,
            "next_attempt_at": at,
            "enqueued_at": at,
            "created_at": at,
            "updated_at": at,
        }
        | values
        for i in range(count)
    ]
    with db.session() as s, s.begin():
        stmt = insert(messages).returning(messages.c.id, sort_by_parameter_order=True)
        return [r.id for r in s.execute(stmt, rows)]


def reference_of(db: Database, mid: int) -> str:
    """The reference the database drew for the message."""
    with db.session() as s:
        return str(s.scalar(select(messages.c.reference).where(messages.c.id == mid)))


def status_of(db: Database, mid: int) -> tuple[str, int]:
    with db.session() as s:
        row = s.execute(
            select(messages.c.status, messages.c.attempts).where(messages.c.id == mid)
        ).one()
        return row.status, row.attempts


def test_claim_moves_due_rows_to_sending_exactly_once(database: Database) -> None:
    ids = add_rows(database, 3)
    with database.session() as s, s.begin():
        first = claim(s, ids, NOW, "t1")
    with database.session() as s, s.begin():
        second = claim(s, ids, NOW, "t1")
    assert sorted(c.id for c in first) == ids
    assert second == []
    assert status_of(database, ids[0]) == ("sending", 1)


def test_claim_skips_rows_whose_next_attempt_is_in_the_future(database: Database) -> None:
    [mid] = add_rows(database, 1, next_attempt_at=NOW + timedelta(minutes=5))
    with database.session() as s, s.begin():
        assert claim(s, [mid], NOW, "t1") == []


def test_timestamps_read_back_timezone_aware(database: Database) -> None:
    [mid] = add_rows(database, 1)
    with database.session() as s:
        created = s.execute(select(messages.c.created_at).where(messages.c.id == mid)).scalar()
    assert created == NOW
    assert created is not None
    assert created.tzinfo is not None


def test_persist_ignores_a_claim_that_was_superseded(database: Database) -> None:
    [mid] = add_rows(database, 1)
    with database.session() as s, s.begin():
        [old] = claim(s, [mid], NOW, "t1")
        # The sweeper gave the row to another worker, which claimed it again.
        s.execute(update(messages).values(status="queued"))
        claim(s, [mid], NOW, "t2")
    stale = plan_update(old.ref, Outcome.accepted("STALE"), ProviderEntry(name="cue"), NOW)
    with database.session() as s, s.begin():
        apply_updates(s, [stale], NOW)
    assert status_of(database, mid) == ("sending", 2)


def test_accepted_outcome_is_persisted_with_tracking_id(database: Database) -> None:
    [mid] = add_rows(database, 1)
    with database.session() as s, s.begin():
        [row] = claim(s, [mid], NOW, "t1")
        apply_updates(
            s,
            [plan_update(row.ref, Outcome.accepted("T9"), ProviderEntry(name="cue"), NOW)],
            NOW,
        )
    with database.session() as s:
        got = s.execute(
            select(messages.c.status, messages.c.tracking_id, messages.c.sent_at).where(
                messages.c.id == mid
            )
        ).one()
    assert tuple(got) == ("accepted", "T9", NOW)


def reclaim_stuck(s: Session, *, ask_first: frozenset[str] = frozenset()) -> list[Stuck]:
    stuck = stuck_rows(s, NOW, deadline_seconds=120, limit=100)
    reclaim(s, stuck, NOW, ask_first=ask_first, max_attempts=lambda _: 8)
    return stuck


def test_rows_stuck_in_sending_past_the_deadline_are_sent_again(database: Database) -> None:
    ids = add_rows(database, 2, at=NOW - timedelta(minutes=15))
    with database.session() as s, s.begin():
        claim(s, ids[:1], NOW - timedelta(minutes=10), "t1")
        claim(s, ids[1:], NOW, "t1")
    with database.session() as s, s.begin():
        assert [row.id for row in reclaim_stuck(s)] == ids[:1]
    assert status_of(database, ids[0]) == ("queued", 1)
    assert status_of(database, ids[1]) == ("sending", 1)


def test_stuck_rows_of_a_vendor_that_can_be_asked_wait_as_unknown(database: Database) -> None:
    [mid] = add_rows(database, 1, at=NOW - timedelta(minutes=15), provider="restcomm")
    with database.session() as s, s.begin():
        claim(s, [mid], NOW - timedelta(minutes=10), "t1")
    with database.session() as s, s.begin():
        reclaim_stuck(s, ask_first=frozenset({"restcomm"}))
    assert status_of(database, mid) == ("unknown", 1)


def accepted_result(claimed: ClaimRef, tracking_id: str) -> SendResult:
    return result_of(claimed, Outcome.accepted(tracking_id), ProviderEntry(name="cue"), NOW)


def attempts_of(db: Database, mid: int) -> int:
    with db.session() as s:
        return len(s.execute(select(send_attempts).where(send_attempts.c.message_id == mid)).all())


def test_a_result_written_twice_once_is_recorded_once(database: Database) -> None:
    [mid] = add_rows(database, 1)
    with database.session() as s, s.begin():
        [row] = claim(s, [mid], NOW, "t1")
    result = accepted_result(row.ref, "T1")
    with database.session() as s, s.begin():
        write_results(s, [result], NOW)
    with database.session() as s, s.begin():
        assert write_results_once(s, [result], NOW) == set()
    assert status_of(database, mid) == ("accepted", 1)
    assert attempts_of(database, mid) == 1


def test_a_result_for_an_older_claim_is_not_written(database: Database) -> None:
    [mid] = add_rows(database, 1)
    with database.session() as s, s.begin():
        [first] = claim(s, [mid], NOW, "t1")
        s.execute(update(messages).where(messages.c.id == mid).values(status="queued"))
        claim(s, [mid], NOW, "t2")  # a second claim: attempts 2
    with database.session() as s, s.begin():
        assert write_results_once(s, [accepted_result(first.ref, "OLD")], NOW) == set()
    assert status_of(database, mid) == ("sending", 2)
    assert attempts_of(database, mid) == 0


def test_a_result_kept_for_a_held_send_is_not_written_onto_the_next_send(
    database: Database,
) -> None:
    """A hold gives the attempt back, so both sends count 1: the claim token,
    not the count, tells them apart."""
    [mid] = add_rows(database, 1)
    with database.session() as s, s.begin():
        [throttled] = claim(s, [mid], NOW, "t1")
    held = result_of(
        throttled.ref, Outcome(OutcomeKind.RATE_LIMITED, code="429"), ProviderEntry(name="cue"), NOW
    )
    with database.session() as s, s.begin():
        write_results(s, [held], NOW)
        s.execute(update(messages).where(messages.c.id == mid).values(next_attempt_at=NOW))
        [again] = claim(s, [mid], NOW, "t2")
    assert again.attempts == throttled.attempts == 1

    with database.session() as s, s.begin():
        assert write_results_once(s, [held], NOW) == set()  # a copy left in Redis
    assert status_of(database, mid) == ("sending", 1)


def test_a_claim_retried_after_committing_unseen_finds_its_rows_again(
    database: Database,
) -> None:
    ids = add_rows(database, 2)
    with database.session() as s, s.begin():
        claim(s, ids, NOW, "t1")  # committed; its answer never reached the worker

    with database.session() as s, s.begin():
        assert claim(s, ids, NOW, "t1") == []
        again = claim(s, ids, NOW, "t1", again=True)
        assert claim(s, ids, NOW, "t2", again=True) == []

    assert sorted(c.id for c in again) == ids
    assert {c.attempts for c in again} == {1}


def test_take_due_finds_due_retries_and_lost_rows_but_not_fresh_ones(database: Database) -> None:
    [fresh] = add_rows(database, 1, at=NOW)
    [lost] = add_rows(database, 1, at=NOW - timedelta(minutes=10))
    [retry] = add_rows(database, 1, at=NOW - timedelta(seconds=30))
    [waiting] = add_rows(database, 1, at=NOW - timedelta(seconds=30))
    with database.session() as s, s.begin():
        s.execute(
            update(messages)
            .where(messages.c.id == retry)
            .values(next_attempt_at=NOW - timedelta(seconds=1))
        )
        s.execute(
            update(messages)
            .where(messages.c.id == waiting)
            .values(next_attempt_at=NOW + timedelta(seconds=30))
        )
        due = take_due(s, NOW, requeue_after_seconds=300, limit=100)
    assert sorted(mid for mid, *_ in due) == sorted([lost, retry])
    assert fresh not in {mid for mid, *_ in due}
    with database.session() as s, s.begin():
        assert take_due(s, NOW, requeue_after_seconds=300, limit=100) == []


def test_status_enum_values_fit_the_column() -> None:
    column_type = messages.c.status.type
    assert isinstance(column_type, String)
    assert column_type.length is not None
    assert max(len(s.value) for s in MessageStatus) <= column_type.length


def test_unknown_rows_past_the_deadline_fail_as_unconfirmed(database: Database) -> None:
    old, recent = add_rows(database, 2, status="unknown")
    with database.session() as s, s.begin():
        s.execute(
            update(messages).where(messages.c.id == old).values(sent_at=NOW - timedelta(hours=25))
        )
        s.execute(
            update(messages).where(messages.c.id == recent).values(sent_at=NOW - timedelta(hours=1))
        )
        assert settle_unconfirmed(s, NOW, deadline_seconds=86400) == 1
    with database.session() as s:
        got = s.execute(
            select(messages.c.status, messages.c.error_code).where(messages.c.id == old)
        ).one()
    assert tuple(got) == ("failed", "unconfirmed")
    assert status_of(database, recent) == ("unknown", 0)


def test_a_row_whose_worker_died_on_every_attempt_becomes_unknown(database: Database) -> None:
    [mid] = add_rows(database, 1, at=NOW - timedelta(minutes=15), attempts=7)
    with database.session() as s, s.begin():
        claim(s, [mid], NOW - timedelta(minutes=10), "t1")  # the 8th attempt; its worker dies
    with database.session() as s, s.begin():
        reclaim_stuck(s)
    assert status_of(database, mid) == ("unknown", 8)


def test_a_row_made_due_by_a_clock_slightly_ahead_is_still_claimed(database: Database) -> None:
    [mid] = add_rows(database, 1, at=NOW + timedelta(milliseconds=300))
    with database.session() as s, s.begin():
        assert [c.id for c in claim(s, [mid], NOW, "t1")] == [mid]


def test_a_vendor_id_wider_than_its_column_is_cut_not_refused(database: Database) -> None:
    [mid] = add_rows(database, 1)
    with database.session() as s, s.begin():
        [row] = claim(s, [mid], NOW, "t1")
    with database.session() as s, s.begin():
        write_results(s, [accepted_result(row.ref, "T" * 300)], NOW)
    with database.session() as s:
        stored = s.scalar(select(messages.c.tracking_id).where(messages.c.id == mid))
    assert stored == "T" * 128


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_result_the_database_refuses_leaves_its_message_unknown_and_the_rest_written(
    database: Database,
) -> None:
    refused, fine = add_rows(database, 2)
    with database.session() as s, s.begin():
        claimed = {c.id: c.ref for c in claim(s, [refused, fine], NOW, "t1")}
    bad = accepted_result(claimed[refused], "T1")
    bad = SendResult(replace(bad.update, sender="S" * 40), bad.attempt)  # wider than sender

    with database.session() as s, s.begin():
        written = write_results_once(s, [bad, accepted_result(claimed[fine], "T2")], NOW)

    assert written == {f"{refused}:t1", f"{fine}:t1"}
    assert status_of(database, refused) == ("unknown", 1)
    assert status_of(database, fine) == ("accepted", 1)
