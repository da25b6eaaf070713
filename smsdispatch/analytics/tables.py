"""The report as rich tables, and the period options parsed (kept out of the CLI module)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from rich.console import Console
from rich.table import Table

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


def print_report(report: Report, console: Console) -> None:
    statuses = [s for s in STATUS_ORDER if any(st == s for _, st in report.counts)]
    table = Table(
        "vendor",
        *statuses,
        "total",
        "delivery rate",
        "median to delivery",
        title=report.filter.describe(),
        caption="delivery rate = delivered / (delivered + undelivered + expired + failed); "
        "median to delivery = final_at - sent_at of delivered messages",
    )
    for provider in [*report.providers, None]:
        table.add_row(
            provider or "all",
            *(
                str(
                    sum(
                        n
                        for (p, st), n in report.counts.items()
                        if st == s and provider in (None, p)
                    )
                )
                for s in statuses
            ),
            str(report.total(provider)),
            _rate(report.delivery_rate(provider)),
            _seconds(report.median_delivery_seconds.get(provider)),
            end_section=provider == report.providers[-1] if report.providers else False,
        )
    console.print(table)
    console.print(_codes("top final error codes (messages.error_code)", report.message_errors))
    console.print(
        _codes(
            "top vendor answers on calls not accepted (send_attempts.code)", report.attempt_errors
        )
    )
