"""`smsdispatch report`: figures checked by hand against rows with known timestamps."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from sqlalchemy import insert, select

from smsdispatch.analytics.chart import draw, render, vendor_colours
from smsdispatch.analytics.queries import CodeCount, Report, ReportFilter, bin_seconds, build_report
from smsdispatch.analytics.tables import parse_moment, print_report
from smsdispatch.store.db import Database
from smsdispatch.store.migrate import upgrade
from smsdispatch.store.models import messages, send_attempts
from smsdispatch.store.reports import Applied, apply_kept, apply_reports
from smsdispatch.vocabulary.delivery import DeliveryReport
from smsdispatch.vocabulary.status import MessageStatus as S

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
PERIOD = ReportFilter(since=T0, until=T0 + timedelta(hours=1))
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# id: (provider, status, created, sent, final, error_code); times in seconds from T0.
MESSAGES: dict[int, tuple[str, str, float, float | None, float | None, str | None]] = {
    1: ("cue", "delivered", 0, 1, 11, None),  # 10 s to delivery
    2: ("cue", "delivered", 5, 6, 36, None),  # 30 s
    3: ("cue", "delivered", 65, 66, 86, None),  # 20 s
    4: ("cue", "undelivered", 70, 71, 100, "E01"),
    5: ("cue", "failed", 80, None, 80, "-4"),
    6: ("cue", "accepted", 90, 91, None, None),
    7: ("messangi", "delivered", 10, 11, 16, None),  # 5 s
    8: ("messangi", "delivered", 20, 21, 61, None),  # 40 s
    9: ("messangi", "expired", 30, 31, 3631, None),
    10: ("messangi", "failed", 40, None, 40, "E111"),
    11: ("messangi", "failed", 50, None, 50, "E111"),
    12: ("messangi", "queued", 60, None, None, None),
    # Outside the period: submitted the day before, and two hours after.
    13: ("skycore", "delivered", -86400, -86399, -86299, "X"),
    14: ("cue", "failed", 7200, None, 7200, "-4"),
}
# (message id, outcome, code, at)
ATTEMPTS: list[tuple[int, str, str | None, float]] = [
    (1, "retry", "-1", 0.5),
    (1, "accepted", None, 1),
    (2, "retry", "-1", 5.5),
    (2, "accepted", None, 6),
    (3, "accepted", None, 66),
    (4, "accepted", None, 71),
    (5, "permanent", "-4", 80),
    (6, "deferred", "rate_limit", 89),  # held by our limiter: neither a send nor a vendor code
    (6, "accepted", None, 91),
    (7, "rate_limited", "429", 10.5),
    (7, "accepted", None, 11),
    (8, "accepted", None, 21),
    (9, "accepted", None, 31),
    (10, "permanent", "E111", 40),
    (11, "permanent", "E111", 50),
    (13, "retry", "-1", -86399.5),
    (14, "permanent", "-4", 7200),
]


def maybe(seconds: float | None) -> datetime | None:
    return None if seconds is None else at(seconds)


def fill(database: Database) -> Database:
    """Store MESSAGES and ATTEMPTS with their known timestamps."""
    rows: list[dict[str, Any]] = []
    for message_id, (provider, status, created, sent, final, code) in MESSAGES.items():
        rows.append(
            {
                "id": message_id,
                "provider": provider,
                "sender": "SENDER",
                "recipient": f"+2782555{message_id:04d}",
                "text": f"text {message_id}",
                "encoding": "gsm7",
                "segments": 1,
                "status": status,
                "priority": 0,
                "attempts": 1,
                "error_code": code,
                "next_attempt_at": at(created),
                "created_at": at(created),
                "sent_at": maybe(sent),
                "final_at": maybe(final),
                "updated_at": at(created),
            }
        )
    attempts = [
        {"message_id": mid, "attempt": 1, "outcome": outcome, "code": code, "at": at(seconds)}
        for mid, outcome, code, seconds in ATTEMPTS
    ]
    with database.session() as session, session.begin():
        session.execute(insert(messages), rows)
        session.execute(insert(send_attempts), attempts)
    return database


@pytest.fixture
def filled(database: Database) -> Database:
    return fill(database)


def report_for(db: Database, f: ReportFilter = PERIOD) -> Report:
    with db.session() as session:
        return build_report(session, f)


def test_counts_by_vendor_and_status_are_of_the_messages_submitted_in_the_period(
    filled: Database,
) -> None:
    assert report_for(filled).counts == {
        ("cue", "delivered"): 3,
        ("cue", "undelivered"): 1,
        ("cue", "failed"): 1,
        ("cue", "accepted"): 1,
        ("messangi", "delivered"): 2,
        ("messangi", "expired"): 1,
        ("messangi", "failed"): 2,
        ("messangi", "queued"): 1,
    }


def test_delivery_rate_is_delivered_over_every_final_outcome(filled: Database) -> None:
    report = report_for(filled)
    assert report.delivery_rate("cue") == pytest.approx(3 / 5)
    assert report.delivery_rate("messangi") == pytest.approx(2 / 5)
    assert report.delivery_rate() == pytest.approx(5 / 10)
    assert report.delivery_rate("skycore") is None


def test_median_time_to_delivery_per_vendor_and_overall(filled: Database) -> None:
    medians = report_for(filled).median_delivery_seconds
    assert medians["cue"] == pytest.approx(20.0, abs=0.01)  # 10, 20, 30
    assert medians["messangi"] == pytest.approx(22.5, abs=0.01)  # 5, 40: the two middle ones
    assert medians[None] == pytest.approx(20.0, abs=0.01)  # 5, 10, 20, 30, 40


def test_top_error_codes_from_messages_and_from_attempts(filled: Database) -> None:
    report = report_for(filled)
    assert report.message_errors == [
        CodeCount("messangi", "E111", 2),
        CodeCount("cue", "-4", 1),
        CodeCount("cue", "E01", 1),
    ]
    assert report.attempt_errors == [
        CodeCount("cue", "-1", 2),
        CodeCount("messangi", "E111", 2),
        CodeCount("cue", "-4", 1),
        CodeCount("messangi", "429", 1),
    ]


def test_an_hour_of_sends_and_outcomes_is_counted_per_minute(filled: Database) -> None:
    report = report_for(filled)
    assert report.bin_seconds == 60  # from the first send to the last outcome: about an hour
    minute = T0
    next_minute = T0 + timedelta(minutes=1)
    assert report.sends_per_bin == [
        (minute, "cue", 4),
        (minute, "messangi", 6),
        (next_minute, "cue", 4),
    ]
    assert report.outcomes_per_bin == [
        (minute, "delivered", 3),
        (minute, "failed", 2),
        (next_minute, "delivered", 2),
        (next_minute, "failed", 1),
        (next_minute, "undelivered", 1),
        (T0 + timedelta(hours=1), "expired", 1),
    ]


def test_a_vendor_filter_narrows_every_figure(filled: Database) -> None:
    report = report_for(filled, ReportFilter(PERIOD.since, PERIOD.until, "messangi"))
    assert report.providers == ["messangi"]
    assert report.delivery_rate() == pytest.approx(0.4)
    assert report.median_delivery_seconds[None] == pytest.approx(22.5, abs=0.01)
    assert report.attempt_errors == [
        CodeCount("messangi", "E111", 2),
        CodeCount("messangi", "429", 1),
    ]
    assert {p for _, p, _ in report.sends_per_bin} == {"messangi"}


def test_an_empty_period_has_no_rate_and_no_median(filled: Database) -> None:
    report = report_for(filled, ReportFilter(T0 - timedelta(hours=5), T0 - timedelta(hours=4)))
    assert report.counts == {}
    assert report.delivery_rate() is None
    assert report.median_delivery_seconds == {None: None}


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_the_chart_is_a_png_of_the_configured_size(filled: Database, tmp_path: Path) -> None:
    path = draw(report_for(filled), tmp_path / "charts" / "report.png")
    assert path.stat().st_size > 10_000
    assert png_size(path) == (1100, 750)


def test_an_empty_period_still_draws_a_chart(filled: Database, tmp_path: Path) -> None:
    empty = report_for(filled, ReportFilter(T0 - timedelta(hours=5), T0 - timedelta(hours=4)))
    assert png_size(draw(empty, tmp_path / "empty.png")) == (1100, 750)


def test_moments_are_iso_in_utc_or_relative_to_now() -> None:
    now = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
    assert parse_moment(None, now) is None
    assert parse_moment("2026-11-20T10:00", now) == T0
    assert parse_moment("2026-11-20T12:00+02:00", now) == T0
    assert parse_moment("90m", now) == now - timedelta(minutes=90)
    assert parse_moment("2d", now) == now - timedelta(days=2)


def test_the_report_command_prints_tables_and_writes_the_chart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    upgrade(url)
    db = fill(Database(url))
    db.dispose()
    out = tmp_path / "cli.png"
    env = {**os.environ, "DATABASE_URL": url, "COLUMNS": "200"}
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "smsdispatch"),
            "report",
            "--since",
            "2026-11-20T10:00",
            "--until",
            "2026-11-20T11:00",
            "--out",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "60.0%" in result.stdout  # cue's delivery rate
    assert "22.5s" in result.stdout  # messangi's median time to delivery
    assert "E111" in result.stdout
    assert "cost by vendor" in result.stdout
    assert png_size(out) == (1100, 750)


def test_a_campaign_filter_reports_only_that_campaigns_messages(filled: Database) -> None:
    from sqlalchemy import update

    from smsdispatch.store.models import campaigns

    with filled.session() as session, session.begin():
        session.execute(
            insert(campaigns),
            {
                "id": 1,
                "name": "c",
                "provider": "messangi",
                "sender": "12345",
                "template": "t",
                "status": "completed",
                "timezone": "UTC",
                "imported": 2,
                "rejected": 0,
                "counts": {},
                "created_at": T0,
                "updated_at": T0,
            },
        )
        session.execute(update(messages).where(messages.c.id.in_([7, 8])).values(campaign_id=1))

    report = report_for(filled, ReportFilter(campaign_id=1))

    assert report.counts == {("messangi", "delivered"): 2}
    assert report.delivery_rate() == pytest.approx(1.0)
    assert report.median_delivery_seconds[None] == pytest.approx(22.5, abs=0.01)


def one_minute_run(database: Database, vendors: list[str]) -> Database:
    """Five messages a second to each vendor for a minute, each delivered 2 s after it left."""
    rows, attempts = [], []
    for v, vendor in enumerate(vendors):
        for k in range(300):
            message_id = 1000 * (v + 1) + k
            sent = at(k / 5)
            rows.append(
                {
                    "id": message_id,
                    "provider": vendor,
                    "sender": "SENDER",
                    "recipient": f"+2782{message_id:07d}",
                    "text": "t",
                    "encoding": "gsm7",
                    "segments": 1,
                    "status": "delivered",
                    "priority": 0,
                    "attempts": 1,
                    "next_attempt_at": sent,
                    "created_at": sent,
                    "sent_at": sent,
                    "final_at": sent + timedelta(seconds=2),
                    "updated_at": sent,
                }
            )
            attempts.append(
                {"message_id": message_id, "attempt": 1, "outcome": "accepted", "at": sent}
            )
    with database.session() as session, session.begin():
        session.execute(insert(messages), rows)
        session.execute(insert(send_attempts), attempts)
    return database


def test_bins_are_chosen_from_the_span_seconds_for_a_minute_minutes_for_an_hour() -> None:
    assert bin_seconds(timedelta(seconds=10)) == 1
    assert bin_seconds(timedelta(minutes=1)) == 1
    assert bin_seconds(timedelta(minutes=5)) == 5
    assert bin_seconds(timedelta(hours=1)) == 60
    assert bin_seconds(timedelta(days=1)) == 1800
    assert bin_seconds(timedelta(days=365)) == 86400


def test_a_one_minute_run_has_far_more_than_two_points_per_vendor(
    database: Database, tmp_path: Path
) -> None:
    report = report_for(one_minute_run(database, ["cue", "messangi"]))
    assert report.bin_seconds == 1
    for vendor in ("cue", "messangi"):
        points = [(t, n) for t, p, n in report.sends_per_bin if p == vendor]
        assert len(points) == 60
        assert {n for _, n in points} == {5}  # five a second, every second
    assert len({t for t, _, _ in report.outcomes_per_bin}) == 60
    assert png_size(draw(report, tmp_path / "minute.png", ["cue", "messangi"])) == (1100, 750)


def test_a_vendor_keeps_its_colour_whichever_vendors_a_report_holds() -> None:
    catalog = ["cue", "messangi", "smsbuddy", "restcomm", "skycore"]
    one = vendor_colours(catalog, ["cue", "skycore"])
    other = vendor_colours(catalog, ["skycore", "messangi", "acme"])
    assert one["skycore"] == other["skycore"] == vendor_colours(catalog, ["skycore"])["skycore"]
    assert len({*one.values(), *other.values()}) == 4  # no two vendors share one
    assert vendor_colours(catalog, ["acme"])["acme"] == other["acme"]


def test_vendors_the_chart_was_given_no_order_for_still_get_colours_of_their_own() -> None:
    colours = vendor_colours([], ["cue", "messangi", "smsbuddy", "restcomm", "skycore"])
    assert len(set(colours.values())) == 5
    assert colours == vendor_colours([], ["skycore", "restcomm", "smsbuddy", "messangi", "cue"])


def test_the_chart_draws_each_vendor_in_its_colour_with_the_legends_outside_the_axes(
    database: Database, tmp_path: Path
) -> None:
    from matplotlib.colors import to_hex

    report = report_for(one_minute_run(database, ["skycore", "cue"]))
    catalog = ["cue", "messangi", "smsbuddy", "restcomm", "skycore"]
    figure = render(report, catalog)
    sends, outcomes = figure.axes
    drawn = {line.get_label(): to_hex(line.get_color()) for line in sends.get_lines()}
    assert drawn == vendor_colours(catalog, ["cue", "skycore"])
    assert sends.get_ylabel() == "messages sent / second"
    for ax in (sends, outcomes):
        legend = ax.get_legend()
        assert legend is not None
        # Anchored beyond the right edge of the axes: it covers no bar or line.
        box = legend.get_window_extent()
        assert box.x0 >= ax.get_window_extent().x1
    # Headroom over the highest point: 5 a second per vendor, 10 outcomes a second.
    assert sends.get_ylim()[1] > 5
    assert outcomes.get_ylim()[1] > 10


def test_pending_messages_are_counted_apart_and_left_out_of_the_delivery_rate(
    filled: Database,
) -> None:
    # In the period: cue has 3 delivered, 2 failed or undelivered, 1 accepted
    # (awaiting its report); messangi 2 delivered, 3 final failures, 1 queued.
    report = report_for(filled)
    assert (report.pending("cue"), report.pending("messangi"), report.pending()) == (1, 1, 2)
    assert report.final() == 10
    assert report.total() == 12
    assert report.delivery_rate() == pytest.approx(5 / 10)  # not 5 / 12


def test_the_report_shows_the_pending_count_beside_a_rate_of_the_final_ones(
    filled: Database,
) -> None:
    report = report_for(filled, ReportFilter(PERIOD.since, PERIOD.until, "cue"))
    console = Console(width=80, record=True)
    print_report(report, console)
    text = console.export_text()
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines() if line.strip()}
    assert rows["final"] == ["5", "5"]  # the rate's denominator, shown
    assert rows["delivery"] == ["60.0%", "60.0%"]
    assert "1 of 6 messages are still pending" in text
    assert rows["pending"] == ["1", "1"]


def test_time_to_delivery_is_the_vendors_own_where_its_report_says(database: Database) -> None:
    """Restcomm is polled: we learn of a delivery up to a polling period late.
    Its status query says when it delivered; that is the time to delivery."""
    sent = at(0)
    learned = at(900)  # the poll, 15 minutes on
    rows = [
        {
            "id": i,
            "provider": "restcomm",
            "sender": "SENDER",
            "recipient": f"+2782555{i:04d}",
            "text": "t",
            "encoding": "gsm7",
            "segments": 1,
            "status": "accepted",
            "priority": 0,
            "attempts": 1,
            "tracking_id": f"SM{i:032d}",
            "next_attempt_at": sent,
            "created_at": sent,
            "sent_at": sent,
            "updated_at": sent,
        }
        for i in (1, 2, 3)
    ]
    with database.session() as session, session.begin():
        session.execute(insert(messages), rows)
    reports = [
        ("restcomm", DeliveryReport(S.DELIVERED, "delivered", f"SM{i:032d}", vendor_at=at(i * 4)))
        for i in (1, 2)
    ] + [("restcomm", DeliveryReport(S.DELIVERED, "delivered", f"SM{3:032d}"))]  # says no time
    with database.session() as session, session.begin():
        # Together, as a batch of polled answers is (one statement on PostgreSQL).
        assert set(apply_reports(session, reports, learned, source="poll")) == {Applied.APPLIED}

    report = report_for(database, ReportFilter())
    # 4 s and 8 s by Restcomm's clock, 900 s by ours (no time in its answer).
    assert report.median_delivery_seconds[None] == pytest.approx(8.0, abs=0.01)
    assert report.vendor_timed == {None: 2, "restcomm": 2}
    console = Console(width=80, record=True)
    print_report(report, console)
    clock = next(line for line in console.export_text().splitlines() if "by vendor's" in line)
    assert clock.split()[-2:] == ["2", "2"]  # restcomm, all: 2 of the 3 delivered


def test_a_kept_report_keeps_the_vendors_time_until_its_send_is_recorded(
    database: Database,
) -> None:
    early = DeliveryReport(S.DELIVERED, "DELIVRD", "611b3a42", vendor_at=at(3))
    with database.session() as session, session.begin():
        assert apply_reports(session, [("messangi", early)], at(4)) == [Applied.UNMATCHED]
    row = {
        "id": 1,
        "provider": "messangi",
        "sender": "SENDER",
        "recipient": "+27825550001",
        "text": "t",
        "encoding": "gsm7",
        "segments": 1,
        "status": "accepted",
        "priority": 0,
        "attempts": 1,
        "tracking_id": "611b3a42",
        "next_attempt_at": at(0),
        "created_at": at(0),
        "sent_at": at(1),
        "updated_at": at(1),
    }
    with database.session() as session, session.begin():
        session.execute(insert(messages), [row])
        assert apply_kept(session, ["611b3a42"], at(5)) == {"611b3a42"}
    with database.session() as session:
        vendor_final_at = session.execute(select(messages.c.vendor_final_at)).scalar_one()
    assert vendor_final_at == at(3)
    assert report_for(database, ReportFilter()).median_delivery_seconds[None] == pytest.approx(
        2.0, abs=0.01
    )
