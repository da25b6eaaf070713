"""Our vendor reference: random per message, drawn by the database, never the row id."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, select, text, update

from smsdispatch.config.catalog import Catalog
from smsdispatch.config.settings import Settings
from smsdispatch.local.simulators import SimulatorServer
from smsdispatch.providers.cue import CueAdapter
from smsdispatch.sending.pipeline import send_messages
from smsdispatch.simulators.cue import CueSimulator
from smsdispatch.store.db import Database
from smsdispatch.store.migrate import downgrade, upgrade
from smsdispatch.store.models import messages
from smsdispatch.store.outbox import claim
from smsdispatch.store.reports import Applied, apply_report
from smsdispatch.vocabulary.delivery import IncomingReport
from smsdispatch.vocabulary.message import is_reference
from smsdispatch.workers.app import create_app
from smsdispatch.workers.runtime import Runtime
from tests.test_outbox import NOW, add_rows, reference_of


def references(db: Database, ids: list[int]) -> list[str]:
    return [reference_of(db, mid) for mid in ids]


def test_every_message_gets_a_well_formed_reference_of_its_own(database: Database) -> None:
    refs = references(database, add_rows(database, 200))
    assert all(is_reference(r) for r in refs)
    assert len(set(refs)) == len(refs)


def test_a_second_database_gives_the_same_row_ids_other_references(
    database: Database, tmp_path: Path
) -> None:
    other_url = f"sqlite:///{tmp_path / 'staging.db'}"
    upgrade(other_url)
    other = Database(other_url)
    try:
        ours, theirs = add_rows(database, 20), add_rows(other, 20)
        assert ours == theirs  # 1..20 in both
        assert not set(references(database, ours)) & set(references(other, theirs))
    finally:
        other.dispose()


def test_the_claim_hands_the_adapter_the_stored_reference_and_whether_it_is_in_doubt(
    database: Database,
) -> None:
    [mid] = add_rows(database, 1)
    with database.session() as s, s.begin():
        s.execute(update(messages).where(messages.c.id == mid).values(reference_in_doubt=True))
    with database.session() as s, s.begin():
        [claimed] = claim(s, [mid], NOW, "t1")
    outbound = claimed.outbound()
    assert (outbound.reference, outbound.reference_in_doubt) == (reference_of(database, mid), True)


# -- migration 0005 on a database with messages in it --------------------------


MIGRATED_AT = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def rows_before_references(
    database_url: str, rows: list[tuple[str, int]], at: datetime = MIGRATED_AT
) -> list[int]:
    """Go back to 0004, store Cue messages of these (status, attempts), and
    upgrade to head; their ids, in order."""
    downgrade(database_url, "0004")
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            ids = [
                conn.execute(
                    text(
                        "INSERT INTO messages (provider, sender, recipient, text, encoding,"
                        " segments, status, attempts, next_attempt_at, created_at, updated_at)"
                        " VALUES ('cue', 'CUESMS', :to, 'hi', 'gsm7', 1, :status, :attempts,"
                        " :at, :at, :at) RETURNING id"
                    ),
                    {"to": f"+2782123{i:04d}", "status": status, "attempts": n, "at": at},
                ).scalar_one()
                for i, (status, n) in enumerate(rows)
            ]
    finally:
        engine.dispose()
    upgrade(database_url)
    return ids


def test_the_migration_keeps_the_row_id_as_the_reference_of_rows_that_may_have_been_sent(
    database_url: str, database: Database
) -> None:
    # Queued again after an ambiguous answer; accepted; never attempted (twice).
    rows = [("queued", 1), ("accepted", 2), ("queued", 0), ("queued", 0)]
    retried, accepted, *fresh = rows_before_references(database_url, rows)

    assert references(database, [retried, accepted]) == [str(retried), str(accepted)]
    drawn = references(database, fresh)
    assert all(is_reference(r) for r in drawn)
    assert len(set(drawn)) == len(drawn)


def test_a_cue_report_naming_a_legacy_row_id_settles_the_row_sent_before_the_migration(
    database_url: str, database: Database
) -> None:
    [legacy] = rows_before_references(database_url, [("accepted", 1)])
    incoming = IncomingReport("GET", {"message_id": str(legacy), "status": "1"}, b"")

    report = CueAdapter.parse_report(incoming)
    with database.session() as s, s.begin():
        applied = apply_report(s, "cue", report, MIGRATED_AT)

    assert applied is Applied.APPLIED
    with database.session() as s:
        status = s.scalar(select(messages.c.status).where(messages.c.id == legacy))
    assert status == "delivered"


# -- Cue's -7 "Duplicate Client Reference", through the send pipeline --------


@pytest.fixture
def rt(
    settings: Settings, database_url: str, catalog: Catalog, redis_client: redis.Redis
) -> Iterator[Runtime]:
    settings = settings.model_copy(update={"database_url": database_url})
    runtime = Runtime(settings, catalog, create_app(settings))
    yield runtime
    runtime.close()


def cue_row_whose_reference_cue_has_seen(
    rt: Runtime, simulators: SimulatorServer, *, in_doubt: bool
) -> int:
    """A queued Cue message, sent once before, whose reference Cue already
    holds (so it answers -7); `in_doubt`: that send went unanswered."""
    [mid] = add_rows(rt.db, 1, at=rt.clock(), attempts=1, reference_in_doubt=in_doubt)
    cue = simulators["cue"]
    assert isinstance(cue, CueSimulator)
    cue.references.add(reference_of(rt.db, mid))
    return mid


def outcome_of(rt: Runtime, mid: int) -> tuple[str, str | None, str | None]:
    """Its status, Cue's code where it failed, Cue's word where it was accepted."""
    m = messages.c
    with rt.db.session() as s:
        row = s.execute(select(m.status, m.error_code, m.vendor_status).where(m.id == mid)).one()
    return row.status, row.error_code, row.vendor_status


def test_cue_duplicate_reference_after_only_answered_sends_resends_under_a_new_reference(
    rt: Runtime, simulators: SimulatorServer
) -> None:
    # Its earlier send was refused (an answer came): nothing of ours was taken.
    mid = cue_row_whose_reference_cue_has_seen(rt, simulators, in_doubt=False)
    spent = reference_of(rt.db, mid)
    send_messages(rt, [mid])
    assert outcome_of(rt, mid) == ("queued", "-7", None)
    assert reference_of(rt.db, mid) != spent

    with rt.db.session() as s, s.begin():
        s.execute(update(messages).where(messages.c.id == mid).values(next_attempt_at=rt.clock()))
    send_messages(rt, [mid])

    assert outcome_of(rt, mid)[0] == "accepted"
    assert [r.reference for r in simulators["cue"].state.received] == [reference_of(rt.db, mid)]


def test_cue_duplicate_reference_after_an_unanswered_send_counts_as_accepted(
    rt: Runtime, simulators: SimulatorServer
) -> None:
    # The first attempt reached Cue and its answer was lost (a timeout).
    mid = cue_row_whose_reference_cue_has_seen(rt, simulators, in_doubt=True)
    send_messages(rt, [mid])
    assert outcome_of(rt, mid) == ("accepted", None, "duplicate")


def test_a_cue_row_queued_for_a_retry_before_the_migration_is_resent_under_its_old_reference(
    rt: Runtime, database_url: str, simulators: SimulatorServer
) -> None:
    # Its first attempt reached Cue under the row id; the answer was lost.
    [mid] = rows_before_references(database_url, [("queued", 1)], at=rt.clock())
    cue = simulators["cue"]
    assert isinstance(cue, CueSimulator)
    cue.references.add(str(mid))

    send_messages(rt, [mid])

    assert outcome_of(rt, mid) == ("accepted", None, "duplicate")
    assert cue.state.received == []
