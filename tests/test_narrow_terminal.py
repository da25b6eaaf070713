"""Every table fits an 80-column terminal without cutting a word ("steady…", "sto…")."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from rich.console import Console
from rich.table import Table

from smsdispatch.analytics.queries import Report, ReportFilter, VendorCost
from smsdispatch.analytics.tables import print_report
from smsdispatch.cli.demo import summary_table
from smsdispatch.limits.view import LimitRow, limits_table

VENDORS = ["cue", "messangi", "restcomm", "skycore", "smsbuddy"]


def at_80_columns(*tables: Table) -> str:
    console = Console(width=80, record=True, color_system=None)
    for table in tables:
        console.print(table)
    return console.export_text()


def assert_fits(text: str) -> None:
    assert "…" not in text, text
    assert max(len(line) for line in text.splitlines()) <= 80, text


def test_limits_fit_80_columns_with_every_header_and_state_whole() -> None:
    rows = [
        LimitRow("cue", "account", "30/1s burst 30", 1764.7, 0.0, 12000, 3),
        LimitRow("cue", "sender 27821230000", "1/1s", 58.8, 1.1, 0, 0),
        LimitRow("messangi", "account", "100/1s burst 100", 5882.4, 0.2, 0, 0),
        LimitRow("restcomm", "account", "20/1s burst 20", 1176.5, 0.0, 0, 0),
        LimitRow("skycore", "account", "50/1s burst 50", 2941.2, 0.0, 0, 0),
        LimitRow("smsbuddy", "account", "10/1s burst 10", 588.2, 0.0, 0, 0),
    ]
    states = {
        "cue": "paused: cue answered -10 (invalid credentials)",
        "messangi": "sending",
        "restcomm": "sending",
        "skycore": "quiet until 08:00 UTC",
        "smsbuddy": "sending",
    }
    text = at_80_columns(limits_table(rows, states))
    assert_fits(text)
    for word in ("steady", "booked", "due/later", "credentials)", "27821230000", "12000/3"):
        assert word in text


def test_the_demo_summary_fits_80_columns() -> None:
    statuses = ["delivered", "undelivered", "expired", "accepted", "failed", "unknown", "queued"]
    counts = {(v, s): 1000 + i for v in VENDORS for i, s in enumerate(statuses)}
    stats = {
        v: {"received": 7000, "duplicate_references": 0, "duplicate_recipient_texts": 2}
        for v in VENDORS
    }
    text = at_80_columns(summary_table(counts, stats))
    assert_fits(text)
    for word in ("stored", "undelivered", "pending", "duplicates", "smsbuddy"):
        assert word in text


def test_the_report_fits_80_columns_with_five_vendors() -> None:
    statuses = ["queued", "accepted", "unknown", "delivered", "undelivered", "expired", "failed"]
    report = Report(
        filter=ReportFilter(since=datetime(2026, 11, 20, tzinfo=UTC), provider=None),
        counts={(v, s): 12345 for v in VENDORS for s in statuses},
        median_delivery_seconds={p: 985.3 for p in [None, *VENDORS]},
        message_errors=[],
        attempt_errors=[],
        vendor_timed={None: 30000, "messangi": 12345, "restcomm": 12345},
        costs=[
            VendorCost(v, 12_345_678, 12_345_678, 98_765_432, Decimal("98765.4321"), 1_234_567)
            for v in VENDORS
        ],
    )
    console = Console(width=80, record=True, color_system=None)
    print_report(report, console)
    text = console.export_text()
    assert_fits(text)
    for word in ("undelivered", "pending", "smsbuddy", "vendor's", "clock", "unpriced"):
        assert word in text


def test_status_fits_80_columns_with_every_status_and_vendor() -> None:
    from smsdispatch.analytics.tables import STATUS_ORDER, status_table

    counts = {(v, s): 123456 for v in VENDORS for s in STATUS_ORDER}
    text = at_80_columns(status_table(counts, VENDORS))
    assert_fits(text)
    for name in [*VENDORS, *STATUS_ORDER]:
        assert name in text
