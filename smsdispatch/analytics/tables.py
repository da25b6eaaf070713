"""The report as rich tables, and the period options parsed (kept out of the CLI module)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from rich.console import Console
from rich.table import Column, Table

from smsdispatch.analytics.queries import CodeCount, Report
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


def _rate(report: Report, provider: str | None) -> str:
    rate = report.delivery_rate(provider)
    return "-" if rate is None else f"{rate:.1%} of {report.final(provider)}"


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}s" if value < 120 else f"{value / 60:.1f}min"


def _timed_by(report: Report, provider: str | None) -> str:
    """Whose clock the delivery times are: the vendor's, ours, or how many of each."""
    delivered = report.count([MessageStatus.DELIVERED], provider)
    theirs = report.vendor_timed.get(provider, 0)
    if delivered == 0:
        return "-"
    if theirs == delivered:
        return "vendor"
    return "ours" if theirs == 0 else f"vendor {theirs}, ours {delivered - theirs}"


def _codes(title: str, rows: list[CodeCount]) -> Table:
    table = Table("vendor", "code", "count", title=title)
    for row in rows:
        table.add_row(row.provider, row.code, str(row.count))
    return table


def report_table(report: Report) -> Table:
    """One column per vendor and one for all, one row per figure: five vendors
    fit an 80-column terminal with every word whole (a row per vendor needs a
    column per status, which does not)."""
    columns: list[str | None] = [*report.providers, None]
    table = Table(
        "",
        *(Column(p or "all", justify="right") for p in columns),
        title=report.filter.describe(),
        caption_justify="left",
        caption="pending: no outcome yet, so not in the delivery rate. "
        "delivery rate = delivered / final (delivered + undelivered + expired + failed). "
        "time to delivery: from sent_at to the vendor's time of delivery where its "
        "report or status query says, else to when we learned it (final_at).",
    )
    present = {status for _, status in report.counts}
    for status in STATUS_ORDER:
        if status in present:
            table.add_row(status, *(str(report.count([status], p)) for p in columns))
    table.add_row("total", *(str(report.total(p)) for p in columns), end_section=True)
    table.add_row("pending", *(str(report.pending(p)) for p in columns))
    table.add_row("delivery rate", *(_rate(report, p) for p in columns))
    table.add_row(
        "median time to delivery",
        *(_seconds(report.median_delivery_seconds.get(p)) for p in columns),
    )
    table.add_row("timed by", *(_timed_by(report, p) for p in columns))
    return table


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
    console.print(_codes("top final error codes (messages.error_code)", report.message_errors))
    console.print(
        _codes(
            "top vendor answers on calls not accepted (send_attempts.code)", report.attempt_errors
        )
    )
