"""The report as rich tables, and the period options parsed (kept out of the CLI module)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial

from rich import box
from rich.console import Console
from rich.table import Column, Table

from smsdispatch.analytics.queries import CodeCount, Report, VendorCost
from smsdispatch.vocabulary.status import MessageStatus

STATUS_ORDER = [s.value for s in MessageStatus]
RELATIVE = re.compile(r"^(\d+)([mhd])$")
UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def parse_moment(value: str | None, now: datetime) -> datetime | None:
    """ISO 8601 (UTC when no offset is given) or relative to now: 30m, 6h, 7d."""
    if value is None:
        return None
    relative = RELATIVE.match(value.strip())
    if relative:
        return now - timedelta(**{UNITS[relative.group(2)]: int(relative.group(1))})
    moment = datetime.fromisoformat(value)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}s" if value < 120 else f"{value / 60:.1f}min"


def _codes(title: str, rows: list[CodeCount]) -> Table:
    table = Table("vendor", "code", "count", title=title)
    for row in rows:
        table.add_row(row.provider, row.code, str(row.count))
    return table


def report_table(report: Report) -> Table:
    """One column per vendor and one for all, one row per figure, no cell
    wider than a vendor's name: the five vendors fit an 80-column terminal
    with every word whole (a row per vendor needs a column per status, which
    does not)."""
    columns: list[str | None] = [*report.providers, None]
    table = Table(
        Column("", no_wrap=True),
        *(Column(p or "all", justify="right", no_wrap=True) for p in columns),
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        title=report.filter.describe(),
        caption_justify="left",
        caption="pending: no outcome yet. final: delivered, undelivered, expired or failed. "
        "delivery rate = delivered / final: pending messages are in neither part. "
        "time to delivery: from sent_at to the vendor's own time of delivery where its "
        "report or status query says (counted in 'by vendor's clock'), else to when we "
        "learned it (final_at).",
    )

    def row(label: str, value: Callable[[str | None], object], *, end: bool = False) -> None:
        table.add_row(label, *(str(value(p)) for p in columns), end_section=end)

    present = {status for _, status in report.counts}
    for status in STATUS_ORDER:
        if status in present:
            row(status, partial(report.count, [status]))
    row("total", report.total, end=True)
    row("pending", report.pending)
    row("final", report.final)
    row("delivery\nrate", lambda p: _rate(report.delivery_rate(p)))
    row("median time\nto delivery", lambda p: _seconds(report.median_delivery_seconds.get(p)))
    row("by vendor's\nclock", lambda p: report.vendor_timed.get(p, 0))
    return table


def cost_table(report: Report) -> Table:
    """Per vendor: messages, those sent, their segments, what they cost, and the
    segments the catalog has no price for (counted apart, not as free).

    A vendor's name and five numbers: within 80 columns for every vendor.
    """
    table = Table(
        "vendor",
        Column("messages", justify="right"),
        Column("sent", justify="right"),
        Column("segments", justify="right"),
        Column("cost", justify="right"),
        Column("unpriced", justify="right"),
        box=box.SIMPLE_HEAD,
        title="cost by vendor",
        caption="cost = segments sent x the price per segment of the message's route "
        "vendor (unrouted: the vendor's on the number's route). unpriced: sent segments "
        "the catalog gives no price for; 'no price' when none has one.",
        caption_justify="left",
    )
    rows = [(c.provider, c) for c in report.costs]
    if len(report.costs) > 1:
        rows.append(("all", _sum(report.costs)))
    for label, c in rows:
        cost = "no price" if c.segments and c.unpriced_segments == c.segments else f"{c.cost:,.4f}"
        table.add_row(
            label,
            f"{c.messages:,}",
            f"{c.sent:,}",
            f"{c.segments:,}",
            cost,
            f"{c.unpriced_segments:,}",
            style="bold" if label == "all" else None,
        )
    return table


def _sum(costs: list[VendorCost]) -> VendorCost:
    return VendorCost(
        "all",
        sum(c.messages for c in costs),
        sum(c.sent for c in costs),
        sum(c.segments for c in costs),
        sum((c.cost for c in costs), Decimal(0)),
        sum(c.unpriced_segments for c in costs),
    )


def pending_note(report: Report) -> str | None:
    """A sentence when messages are still pending: the rate is of the final ones only."""
    pending, total = report.pending(), report.total()
    if not pending:
        return None
    return (
        f"{pending} of {total} messages are still pending (no final report yet): "
        f"the delivery rate is of the {report.final()} with a final outcome."
    )


def print_report(report: Report, console: Console) -> None:
    console.print(report_table(report))
    note = pending_note(report)
    if note:
        console.print(f"[yellow]{note}[/yellow]")
    if report.costs:
        console.print(cost_table(report))
    console.print(_codes("top final error codes (messages.error_code)", report.message_errors))
    console.print(
        _codes(
            "top vendor answers on calls not accepted (send_attempts.code)", report.attempt_errors
        )
    )


def status_table(counts: dict[tuple[str, str], int], vendors: list[str]) -> Table:
    """Messages by status (rows) and vendor (columns), for `smsdispatch status`.

    Statuses go down and vendors across: five vendors and a total fit 80
    columns, where a column per status (ten of them) did not. Pauses are
    printed under the table, as sentences that wrap, not as a column.
    """
    statuses = [s for s in STATUS_ORDER if any(counts.get((v, s)) for v in vendors)]
    table = Table(
        "status",
        *(Column(v, justify="right") for v in vendors),
        Column("all", justify="right"),
        box=box.SIMPLE,
    )
    for status in statuses:
        row = [counts.get((v, status), 0) for v in vendors]
        table.add_row(status, *(str(n) for n in row), str(sum(row)))
    if not statuses:
        table.add_row("(none)", *("0" for _ in vendors), "0")
    return table
