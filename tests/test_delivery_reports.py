"""Applying delivery reports: forward only, idempotent, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import random
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select

from smsdispatch.reports.intake import ReportIntake
from smsdispatch.store.db import Database
from smsdispatch.store.models import delivery_reports, messages
from smsdispatch.store.outbox import claim, write_results
from smsdispatch.store.reports import Applied, apply_kept, apply_report, apply_reports
from smsdispatch.vocabulary.delivery import DeliveryReport
from smsdispatch.vocabulary.status import MessageStatus
from tests.settings import make_settings
from tests.test_outbox import accepted_result, add_rows, reference_of

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
S = MessageStatus


def report(
    status: MessageStatus,
    word: str,
    *,
    tracking_id: str | None = "T1",
    reference: str | None = None,
    code: str | None = None,
) -> DeliveryReport:
    return DeliveryReport(
        status, word, tracking_id=tracking_id, reference=reference, error_code=code, raw=word
    )


def apply(db: Database, provider: str, *reports: DeliveryReport) -> list[Applied]:
    results = []
    for n, r in enumerate(reports):
        with db.session() as s, s.begin():
            results.append(apply_report(s, provider, r, NOW + timedelta(seconds=n)))
    return results


def state(db: Database, mid: int) -> tuple[str, str | None, str | None, str | None]:
    m = messages.c
    with db.session() as s:
        row = s.execute(
            select(m.status, m.vendor_status, m.tracking_id, m.error_code).where(m.id == mid)
        ).one()
    return row.status, row.vendor_status, row.tracking_id, row.error_code


def stored(db: Database) -> list[tuple[str, bool]]:
    d = delivery_reports.c
    with db.session() as s:
        return [
            (r.outcome, r.applied) for r in s.execute(select(d.outcome, d.applied).order_by(d.id))
        ]


def accepted_row(db: Database, provider: str = "restcomm", tracking_id: str = "T1") -> int:
    [mid] = add_rows(db, 1, provider=provider, status="accepted", tracking_id=tracking_id)
    return mid


def test_a_final_report_settles_an_accepted_message(database: Database) -> None:
    mid = accepted_row(database)
    assert apply(database, "restcomm", report(S.UNDELIVERED, "undelivered", code="30003")) == [
        Applied.APPLIED
    ]
    assert state(database, mid) == ("undelivered", "undelivered", "T1", "30003")
    with database.session() as s:
        final_at = s.execute(select(messages.c.final_at).where(messages.c.id == mid)).scalar()
    assert final_at == NOW


def test_a_late_intermediate_report_never_overwrites_delivered(database: Database) -> None:
    mid = accepted_row(database)
    results = apply(
        database,
        "restcomm",
        report(S.DELIVERED, "delivered"),
        report(S.ACCEPTED, "sent"),
    )
    assert results == [Applied.APPLIED, Applied.IGNORED]
    assert state(database, mid)[:2] == ("delivered", "delivered")


def test_a_final_status_is_never_changed_by_another_final_report(database: Database) -> None:
    mid = accepted_row(database)
    apply(database, "restcomm", report(S.EXPIRED, "expired"), report(S.DELIVERED, "delivered"))
    assert state(database, mid)[:2] == ("expired", "expired")


def test_a_repeated_report_changes_nothing(database: Database) -> None:
    mid = accepted_row(database)
    results = apply(
        database,
        "restcomm",
        report(S.ACCEPTED, "sent"),
        report(S.ACCEPTED, "sent"),
        report(S.DELIVERED, "delivered"),
        report(S.DELIVERED, "delivered"),
    )
    assert results == [Applied.APPLIED, Applied.IGNORED, Applied.APPLIED, Applied.IGNORED]
    assert state(database, mid)[:2] == ("delivered", "delivered")
    assert stored(database) == [
        ("applied", True),
        ("ignored", False),
        ("applied", True),
        ("ignored", False),
    ]


def test_an_intermediate_report_updates_the_vendor_word_and_keeps_accepted(
    database: Database,
) -> None:
    mid = accepted_row(database)
    apply(database, "restcomm", report(S.ACCEPTED, "queued"), report(S.ACCEPTED, "sent"))
    assert state(database, mid)[:2] == ("accepted", "sent")


def test_an_unknown_message_becomes_final_and_records_the_tracking_id(database: Database) -> None:
    [mid] = add_rows(database, 1, provider="messangi", status="unknown", error_code="ambiguous")
    [result] = apply(
        database,
        "messangi",
        report(S.DELIVERED, "DELIVRD", tracking_id="M-9", reference=reference_of(database, mid)),
    )
    assert result is Applied.APPLIED
    assert state(database, mid) == ("delivered", "DELIVRD", "M-9", None)


def test_an_unknown_message_becomes_accepted_on_an_intermediate_report(
    database: Database,
) -> None:
    [mid] = add_rows(database, 1, provider="messangi", status="unknown")
    ref = reference_of(database, mid)
    apply(database, "messangi", report(S.ACCEPTED, "ENROUTE", tracking_id="M-9", reference=ref))
    assert state(database, mid)[:3] == ("accepted", "ENROUTE", "M-9")


def test_a_final_report_naming_our_reference_settles_a_message_still_sending(
    database: Database,
) -> None:
    [mid] = add_rows(database, 1, provider="cue", status="sending")
    ref = reference_of(database, mid)
    apply(database, "cue", report(S.DELIVERED, "1", tracking_id=None, reference=ref))
    assert state(database, mid)[0] == "delivered"


def test_a_report_is_matched_by_our_reference_among_messages_of_the_vendor(
    database: Database,
) -> None:
    ids = add_rows(database, 3, provider="cue", status="accepted")
    ref = reference_of(database, ids[1])
    assert apply(database, "cue", report(S.DELIVERED, "1", tracking_id=None, reference=ref)) == [
        Applied.APPLIED
    ]
    assert [state(database, mid)[0] for mid in ids] == ["accepted", "delivered", "accepted"]


def test_a_report_naming_a_row_id_as_its_reference_matches_nothing(database: Database) -> None:
    [mid] = add_rows(database, 1, provider="cue", status="accepted")
    row_id = report(S.DELIVERED, "1", tracking_id=None, reference=str(mid))
    assert apply(database, "cue", row_id) == [Applied.UNMATCHED]
    assert state(database, mid)[0] == "accepted"


def test_an_intermediate_report_leaves_a_message_still_sending_to_its_worker(
    database: Database,
) -> None:
    [mid] = add_rows(database, 1, provider="cue", status="sending")
    ref = reference_of(database, mid)
    assert apply(database, "cue", report(S.ACCEPTED, "8", tracking_id=None, reference=ref)) == [
        Applied.IGNORED
    ]
    assert state(database, mid)[0] == "sending"


def test_a_report_for_an_unknown_tracking_id_changes_nothing_and_is_kept(
    database: Database,
) -> None:
    mid = accepted_row(database)
    assert apply(database, "restcomm", report(S.DELIVERED, "delivered", tracking_id="T-other")) == [
        Applied.UNMATCHED
    ]
    assert state(database, mid)[0] == "accepted"
    assert stored(database) == [("unmatched", False)]


def test_a_report_never_moves_another_vendors_message(database: Database) -> None:
    mid = accepted_row(database, provider="skycore")
    assert apply(database, "restcomm", report(S.DELIVERED, "delivered")) == [Applied.UNMATCHED]
    assert state(database, mid)[0] == "accepted"


def test_reports_out_of_order_leave_the_final_status(database: Database) -> None:
    ids = [accepted_row(database, tracking_id=f"T{n}") for n in range(3)]
    sequences = [
        [
            report(S.ACCEPTED, "sent", tracking_id="T0"),
            report(S.DELIVERED, "delivered", tracking_id="T0"),
        ],
        [
            report(S.DELIVERED, "delivered", tracking_id="T1"),
            report(S.ACCEPTED, "sent", tracking_id="T1"),
        ],
        [
            report(S.UNDELIVERED, "undelivered", tracking_id="T2"),
            report(S.ACCEPTED, "queued", tracking_id="T2"),
            report(S.DELIVERED, "delivered", tracking_id="T2"),
            report(S.UNDELIVERED, "undelivered", tracking_id="T2"),
        ],
    ]
    for sequence in sequences:
        apply(database, "restcomm", *sequence)
    with database.session() as s:
        counts = s.execute(
            select(messages.c.id, messages.c.status).where(messages.c.id.in_(ids))
        ).all()
    assert dict(counts) == {ids[0]: "delivered", ids[1]: "delivered", ids[2]: "undelivered"}
    with database.session() as s:
        assert s.execute(select(func.count()).select_from(delivery_reports)).scalar() == 8


def test_a_final_report_for_a_message_still_sending_settles_it(database: Database) -> None:
    """Cue names our reference, so its report can beat the worker's commit;
    the worker's update, which requires `sending`, then changes nothing."""
    [mid] = add_rows(database, 1, provider="cue", status="sending")
    early = report(S.DELIVERED, "1", tracking_id=None, reference=reference_of(database, mid))
    assert apply(database, "cue", early) == [Applied.APPLIED]
    assert state(database, mid)[0] == "delivered"


def test_a_report_that_races_its_send_is_kept_and_applied_when_the_send_is_recorded(
    database: Database,
) -> None:
    [mid] = add_rows(database, 1, provider="cue")
    with database.session() as s, s.begin():
        [row] = claim(s, [mid], NOW, "t1")
    early = report(S.DELIVERED, "delivered", tracking_id="T-race")
    assert apply(database, "cue", early) == [Applied.UNMATCHED]
    assert stored(database) == [("unmatched", False)]

    with database.session() as s, s.begin():
        write_results(s, [accepted_result(row.ref, "T-race")], NOW)

    assert state(database, mid)[0] == "delivered"
    assert stored(database) == [("applied", True)]


@pytest.mark.parametrize("batch", [1, 2], ids=["alone", "in-a-batch"])
def test_a_report_whose_send_is_recorded_while_it_is_applied_is_applied_not_ignored(
    database: Database, batch: int
) -> None:
    if database.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: a send cannot commit mid-statement")
    [mid] = add_rows(database, 1, provider="cue")
    with database.session() as s, s.begin():
        [row] = claim(s, [mid], NOW, "t1")
    recorded: list[bool] = []

    def record_the_send_after_the_first_update(_: Any, __: Any, statement: str, *___: Any) -> None:
        """The worker commits the send between the report's UPDATE, which
        did not see it, and the look for the message, which does."""
        if recorded or "UPDATE MESSAGES" not in statement.upper():
            return
        recorded.append(True)
        with database.session() as w, w.begin():
            write_results(w, [accepted_result(row.ref, "T-race")], NOW)

    others = [("cue", report(S.DELIVERED, "delivered", tracking_id="T-other"))] * (batch - 1)
    event.listen(database.engine, "after_cursor_execute", record_the_send_after_the_first_update)
    try:
        with database.session() as s, s.begin():
            outcomes = apply_reports(
                s, [("cue", report(S.DELIVERED, "delivered", tracking_id="T-race")), *others], NOW
            )
    finally:
        event.remove(
            database.engine, "after_cursor_execute", record_the_send_after_the_first_update
        )

    assert recorded
    assert outcomes[0] is Applied.APPLIED
    assert state(database, mid)[0] == "delivered"
    assert stored(database)[0] == ("applied", True)


def test_a_report_the_database_cannot_hold_costs_the_others_of_its_batch_nothing(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    if database.engine.dialect.name != "postgresql":
        pytest.skip("SQLite does not enforce a column's length: nothing is refused")
    mid = accepted_row(database, tracking_id="T1")
    other = accepted_row(database, tracking_id="T2")
    # Long enough a wait that both reports are in one batch.
    settings = make_settings(database_url=database.url, report_batch_wait_seconds=0.5)
    intake = ReportIntake(settings, database)
    good = report(S.DELIVERED, "delivered", tracking_id="T1")
    unholdable = report(S.UNDELIVERED, "failed", tracking_id="T2")
    # Past what parsing lets through, and past messages.error_code's 64.
    object.__setattr__(unholdable, "error_code", "E" * 100)

    async def one_batch() -> list[Applied]:
        return list(
            await asyncio.gather(
                intake.apply("restcomm", good), intake.apply("restcomm", unholdable)
            )
        )

    assert asyncio.run(one_batch()) == [Applied.APPLIED, Applied.MALFORMED]
    assert "refused a batch of reports; applying them one by one" in caplog.text
    assert (state(database, mid)[0], state(database, other)[0]) == ("delivered", "accepted")


def test_kept_reports_of_several_messages_are_applied_by_the_write_that_records_their_sends(
    database: Database,
) -> None:
    ids = add_rows(database, 3, provider="restcomm")
    with database.session() as s, s.begin():
        rows = claim(s, ids, NOW, "t1")
    early = [report(S.ACCEPTED, "sent", tracking_id=f"T{n}") for n in (0, 2)]
    early += [
        report(S.DELIVERED, "delivered", tracking_id="T0"),
        # T1's final report came before its "sent": the "sent" is late.
        report(S.UNDELIVERED, "undelivered", tracking_id="T1"),
        report(S.ACCEPTED, "sent", tracking_id="T1"),
    ]
    assert apply(database, "restcomm", *early) == [Applied.UNMATCHED] * 5
    # The same id at another vendor names none of these messages.
    assert apply(database, "skycore", report(S.DELIVERED, "x", tracking_id="T2")) == [
        Applied.UNMATCHED
    ]

    with database.session() as s, s.begin():
        write_results(s, [accepted_result(r.ref, f"T{n}") for n, r in enumerate(rows)], NOW)

    assert [state(database, mid)[:2] for mid in ids] == [
        ("delivered", "delivered"),
        ("undelivered", "undelivered"),
        ("accepted", "sent"),
    ]
    assert stored(database) == [("applied", True)] * 4 + [
        ("ignored", False),
        ("unmatched", False),
    ]


def test_rows_reports_settled_while_sending_get_the_vendor_ids_their_batch_recorded(
    database: Database,
) -> None:
    ids = add_rows(database, 3, provider="cue")
    with database.session() as s, s.begin():
        rows = claim(s, ids, NOW, "t1")
    for mid in ids[:2]:
        early = report(S.DELIVERED, "1", tracking_id=None, reference=reference_of(database, mid))
        assert apply(database, "cue", early) == [Applied.APPLIED]

    with database.session() as s, s.begin():
        write_results(s, [accepted_result(r.ref, f"CUE-{r.id}") for r in rows], NOW)

    assert [state(database, mid)[::2] for mid in ids] == [
        ("delivered", f"CUE-{ids[0]}"),
        ("delivered", f"CUE-{ids[1]}"),
        ("accepted", f"CUE-{ids[2]}"),
    ]


def test_many_reports_in_one_batch_each_get_their_own_outcome(database: Database) -> None:
    mid = accepted_row(database, tracking_id="T1")
    batch = [
        ("restcomm", report(S.DELIVERED, "delivered", tracking_id="T1")),
        ("restcomm", report(S.DELIVERED, "delivered", tracking_id="T1")),
        ("restcomm", report(S.DELIVERED, "delivered", tracking_id="T-none")),
    ]
    with database.session() as s, s.begin():
        outcomes = apply_reports(s, batch, NOW)
    assert outcomes == [Applied.APPLIED, Applied.IGNORED, Applied.UNMATCHED]
    assert state(database, mid)[0] == "delivered"
    assert sorted(stored(database)) == [("applied", True), ("ignored", False), ("unmatched", False)]


def test_concurrent_reports_for_the_same_messages_end_in_their_final_status(
    database: Database,
) -> None:
    finals = [S.DELIVERED, S.UNDELIVERED, S.EXPIRED]
    ids = [accepted_row(database, tracking_id=f"T{n}") for n in range(30)]
    reports = []
    for n in range(len(ids)):
        final = finals[n % 3]
        reports += [report(final, final.value, tracking_id=f"T{n}")] * 3
        reports += [report(S.ACCEPTED, word, tracking_id=f"T{n}") for word in ("sent", "queued")]
    random.Random(5).shuffle(reports)

    def one(r: DeliveryReport) -> Applied:
        with database.session() as s, s.begin():
            return apply_report(s, "restcomm", r, NOW)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one, reports))

    with database.session() as s:
        statuses = dict(
            s.execute(select(messages.c.id, messages.c.status).where(messages.c.id.in_(ids))).all()
        )
    assert statuses == {mid: finals[n % 3].value for n, mid in enumerate(ids)}
    # Each message was settled exactly once, whatever the order.
    finals_applied = [
        r for r, res in zip(reports, results, strict=True) if r.final and res is Applied.APPLIED
    ]
    assert len(finals_applied) == len(ids)


def test_a_kept_report_its_message_has_gone_past_is_marked_ignored_not_left_waiting(
    database: Database,
) -> None:
    early = report(S.ACCEPTED, "sent", tracking_id="T-past")
    assert apply(database, "restcomm", early) == [Applied.UNMATCHED]
    accepted_row(database, tracking_id="T-past")
    apply(database, "restcomm", report(S.DELIVERED, "delivered", tracking_id="T-past"))

    with database.session() as s, s.begin():
        assert apply_kept(s, {"T-past"}, NOW) == set()
    assert sorted(stored(database)) == [("applied", True), ("ignored", False)]


def test_one_batch_of_reports_out_of_order_and_repeated_leaves_each_final_status(
    database: Database,
) -> None:
    ids = [accepted_row(database, tracking_id=f"T{n}") for n in range(3)]
    [cue_id] = add_rows(database, 1, provider="cue", status="sending")
    cue_ref = reference_of(database, cue_id)
    batch = [
        ("restcomm", report(S.DELIVERED, "delivered", tracking_id="T0")),
        ("restcomm", report(S.ACCEPTED, "sent", tracking_id="T0")),
        ("restcomm", report(S.ACCEPTED, "queued", tracking_id="T1")),
        ("restcomm", report(S.UNDELIVERED, "undelivered", tracking_id="T1")),
        ("restcomm", report(S.DELIVERED, "delivered", tracking_id="T1")),
        ("cue", report(S.DELIVERED, "1", tracking_id=None, reference=cue_ref)),
        ("cue", report(S.DELIVERED, "1", tracking_id=None, reference=cue_ref)),
        ("restcomm", report(S.EXPIRED, "expired", tracking_id="T-none")),
    ]
    with database.session() as s, s.begin():
        outcomes = apply_reports(s, batch, NOW)

    assert outcomes == [
        Applied.APPLIED,
        Applied.IGNORED,
        Applied.APPLIED,
        Applied.APPLIED,
        Applied.IGNORED,
        Applied.APPLIED,
        Applied.IGNORED,
        Applied.UNMATCHED,
    ]
    assert [state(database, mid)[0] for mid in [*ids, cue_id]] == [
        "delivered",
        "undelivered",
        "accepted",
        "delivered",
    ]
    with database.session() as s:
        assert s.execute(select(func.count()).select_from(delivery_reports)).scalar() == len(batch)
