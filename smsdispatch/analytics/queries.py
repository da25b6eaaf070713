"""What happened to the messages of a period: counts, delivery rate, time to delivery, errors.

The population: the messages *submitted* (created_at) in [since, until), of
one vendor if asked. Every figure is about those messages, including their
send attempts and their final statuses, even when those came after `until`;
so a campaign, once campaigns exist, is one more condition on the same rows
(`ReportFilter.conditions`, the only place a filter on `messages` lives).

Delivery rate = delivered / (delivered + undelivered + expired + failed):
the share of messages with a final outcome that reached the handset.
Messages still queued, sending, accepted (awaiting a report) or unknown are
not in it (they have no outcome yet), and a failed message counts against it
whether the vendor refused it or it was never sendable.

Time to delivery = final_at - sent_at of delivered messages (the vendor's
report arriving, less the moment the vendor accepted it).

All aggregation runs in the database: the median is `percentile_cont` on
PostgreSQL and, on SQLite (which has none), a count and then the one or two
middle values by ORDER BY ... LIMIT/OFFSET: no more than two rows come back
to Python whatever the size of the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, extract, func, literal_column, select
from sqlalchemy.orm import Session

from smsdispatch.store.models import UTCDateTime, messages, send_attempts
from smsdispatch.vocabulary.outcomes import OutcomeKind
from smsdispatch.vocabulary.status import MessageStatus

# Attempts whose code is not a vendor's error: accepted ones, and those our
# own gate deferred before calling the vendor.
NOT_VENDOR_ERRORS = (OutcomeKind.ACCEPTED, OutcomeKind.DEFERRED)
FINAL_OUTCOMES = (
    MessageStatus.DELIVERED,
    MessageStatus.UNDELIVERED,
    MessageStatus.EXPIRED,
    MessageStatus.FAILED,
)


@dataclass(frozen=True)
class ReportFilter:
    """Which messages the report is about."""

    since: datetime | None = None
    until: datetime | None = None
    provider: str | None = None
    campaign_id: int | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        """Conditions on `messages`, shared by every query below (join to it)."""
        m = messages.c
        where: list[ColumnElement[bool]] = []
        if self.since is not None:
            where.append(m.created_at >= self.since)
        if self.until is not None:
            where.append(m.created_at < self.until)
        if self.provider is not None:
            where.append(m.provider == self.provider)
        if self.campaign_id is not None:
            where.append(m.campaign_id == self.campaign_id)
        return where

    def describe(self) -> str:
        since = f"{self.since:%Y-%m-%d %H:%M:%S}" if self.since else "the beginning"
        until = f"{self.until:%Y-%m-%d %H:%M:%S}" if self.until else "now"
        vendor = f", vendor {self.provider}" if self.provider else ""
        campaign = f", campaign {self.campaign_id}" if self.campaign_id is not None else ""
        return f"messages submitted from {since} to {until} UTC{vendor}{campaign}"


@dataclass(frozen=True)
class CodeCount:
    provider: str
    code: str
    count: int


@dataclass(frozen=True)
class Report:
    filter: ReportFilter
    counts: dict[tuple[str, str], int]  # (provider, status) -> messages
    median_delivery_seconds: dict[str | None, float | None]  # provider (None: all) -> seconds
    message_errors: list[CodeCount]  # final error codes (messages.error_code)
    attempt_errors: list[CodeCount]  # what vendors answered on calls that did not go through
    sends_per_minute: list[tuple[datetime, str, int]] = field(default_factory=list)
    outcomes_per_minute: list[tuple[datetime, str, int]] = field(default_factory=list)

    @property
    def providers(self) -> list[str]:
        return sorted({p for p, _ in self.counts})

    def total(self, provider: str | None = None) -> int:
        return sum(n for (p, _), n in self.counts.items() if provider in (None, p))

    def delivery_rate(self, provider: str | None = None) -> float | None:
        """delivered / (delivered + undelivered + expired + failed); None if none is final."""
        by_status: dict[str, int] = {}
        for (p, status), n in self.counts.items():
            if provider in (None, p):
                by_status[status] = by_status.get(status, 0) + n
        final = sum(by_status.get(s, 0) for s in FINAL_OUTCOMES)
        return by_status.get(MessageStatus.DELIVERED, 0) / final if final else None


def status_counts(session: Session, f: ReportFilter) -> dict[tuple[str, str], int]:
    m = messages.c
    stmt = (
        select(m.provider, m.status, func.count())
        .where(*f.conditions())
        .group_by(m.provider, m.status)
    )
    return {(p, s): n for p, s, n in session.execute(stmt)}


def _delivery_seconds(dialect: str) -> ColumnElement[Any]:
    m = messages.c
    if dialect == "postgresql":
        return extract("epoch", m.final_at - m.sent_at)
    # SQLite stores "YYYY-MM-DD HH:MM:SS.ffffff" in UTC: julianday's days, in
    # seconds (a double: about 20 microseconds of resolution).
    return (func.julianday(m.final_at) - func.julianday(m.sent_at)) * 86400.0


def _delivered(f: ReportFilter, provider: str | None) -> list[ColumnElement[bool]]:
    m = messages.c
    where = [
        *f.conditions(),
        m.status == MessageStatus.DELIVERED,
        m.sent_at.is_not(None),
        m.final_at.is_not(None),
    ]
    if provider is not None:
        where.append(m.provider == provider)
    return where


def median_delivery_seconds(
    session: Session, f: ReportFilter, provider: str | None = None
) -> float | None:
    """The median of final_at - sent_at over delivered messages (None if there are none)."""
    dialect = session.get_bind().dialect.name
    seconds = _delivery_seconds(dialect)
    where = _delivered(f, provider)
    if dialect == "postgresql":
        value = session.execute(
            select(func.percentile_cont(0.5).within_group(seconds)).where(*where)
        ).scalar()
        return None if value is None else float(value)
    n = session.execute(select(func.count()).select_from(messages).where(*where)).scalar() or 0
    if n == 0:
        return None
    middle = (
        select(seconds)
        .where(*where)
        .order_by(seconds)
        .offset((n - 1) // 2)
        .limit(1 if n % 2 else 2)
    )
    values = [float(v) for v in session.execute(middle).scalars()]
    return sum(values) / len(values)


def top_message_errors(session: Session, f: ReportFilter, limit: int = 10) -> list[CodeCount]:
    """The commonest final error codes (messages.error_code), per vendor."""
    m = messages.c
    stmt = (
        select(m.provider, m.error_code, func.count().label("n"))
        .where(*f.conditions(), m.error_code.is_not(None))
        .group_by(m.provider, m.error_code)
        .order_by(literal_column("n").desc(), m.provider, m.error_code)
        .limit(limit)
    )
    return [CodeCount(p, c, n) for p, c, n in session.execute(stmt)]


def top_attempt_errors(session: Session, f: ReportFilter, limit: int = 10) -> list[CodeCount]:
    """The commonest codes vendors answered on calls that were not accepted (retries,
    throttles, refusals), per vendor: send_attempts.code of the report's messages.
    Our own deferrals (code "rate_limit", "quiet_hours") are not vendor answers."""
    m, a = messages.c, send_attempts.c
    stmt = (
        select(m.provider, a.code, func.count().label("n"))
        .select_from(send_attempts.join(messages, a.message_id == m.id))
        .where(*f.conditions(), a.code.is_not(None), a.outcome.not_in(NOT_VENDOR_ERRORS))
        .group_by(m.provider, a.code)
        .order_by(literal_column("n").desc(), m.provider, a.code)
        .limit(limit)
    )
    return [CodeCount(p, c, n) for p, c, n in session.execute(stmt)]


def _minute(dialect: str, column: ColumnElement[datetime]) -> ColumnElement[datetime]:
    if dialect == "postgresql":
        return func.date_trunc("minute", column, type_=UTCDateTime())
    return func.strftime("%Y-%m-%d %H:%M:00", column)


def _as_utc(value: datetime | str) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def sends_per_minute(session: Session, f: ReportFilter) -> list[tuple[datetime, str, int]]:
    """Vendor calls per minute (send_attempts.at) per vendor: (minute, provider, calls).

    Attempts our own limiter or quiet hours deferred never reached the vendor
    and are left out."""
    m, a = messages.c, send_attempts.c
    minute = _minute(session.get_bind().dialect.name, a.at).label("minute")
    stmt = (
        select(minute, m.provider, func.count())
        .select_from(send_attempts.join(messages, a.message_id == m.id))
        .where(*f.conditions(), a.outcome != OutcomeKind.DEFERRED)
        .group_by(literal_column("minute"), m.provider)
        .order_by(literal_column("minute"), m.provider)
    )
    return [(_as_utc(t), p, n) for t, p, n in session.execute(stmt)]


def outcomes_per_minute(session: Session, f: ReportFilter) -> list[tuple[datetime, str, int]]:
    """Final outcomes per minute (messages.final_at) by status: (minute, status, messages)."""
    m = messages.c
    minute = _minute(session.get_bind().dialect.name, m.final_at).label("minute")
    stmt = (
        select(minute, m.status, func.count())
        .where(*f.conditions(), m.final_at.is_not(None), m.status.in_(FINAL_OUTCOMES))
        .group_by(literal_column("minute"), m.status)
        .order_by(literal_column("minute"), m.status)
    )
    return [(_as_utc(t), s, n) for t, s, n in session.execute(stmt)]


def build_report(session: Session, f: ReportFilter, *, top: int = 10) -> Report:
    counts = status_counts(session, f)
    providers: Sequence[str | None] = [None, *sorted({p for p, _ in counts})]
    return Report(
        filter=f,
        counts=counts,
        median_delivery_seconds={p: median_delivery_seconds(session, f, p) for p in providers},
        message_errors=top_message_errors(session, f, top),
        attempt_errors=top_attempt_errors(session, f, top),
        sends_per_minute=sends_per_minute(session, f),
        outcomes_per_minute=outcomes_per_minute(session, f),
    )
