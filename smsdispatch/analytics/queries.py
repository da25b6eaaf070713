"""What happened to the messages of a period: counts, delivery rate, time to delivery, errors.

The population: the messages *submitted* (created_at) in [since, until), of
one vendor if asked. Every figure is about those messages, including their
send attempts and their final statuses, even when those came after `until`;
so a campaign, once campaigns exist, is one more condition on the same rows
(`ReportFilter.conditions`, the only place a filter on `messages` lives).

Delivery rate = delivered / (delivered + undelivered + expired + failed):
the share of messages with a final outcome that reached the handset.
Messages still held, queued, sending, accepted (awaiting a report) or unknown
are *pending*: counted apart and not in it (they have no outcome yet), so a
set where most are pending shows that next to the rate; a failed message
counts against it whether the vendor refused it or it was never sendable.

Time to delivery = delivered - sent_at of delivered messages, where
"delivered" is the vendor's own time of it when its report or status query
said (messages.vendor_final_at: Messangi's callbacks, Restcomm's status
queries) and otherwise final_at, when we learned it: for a polled vendor that
is up to a polling period late, so the report says how many of the times are
the vendor's (`Report.vendor_timed`). A vendor time before sent_at (clocks
apart) is not used.

Cost per vendor = billed segments x the price per segment of the message's
route vendor in the catalog (a message without a route: that vendor's price on
the route its number falls in, store/destinations.py). Billed segments are
those of messages handed to the vendor (sent_at set); a message never sent
costs nothing. Grouped in the database by vendor and route; segments whose
route vendor has no price are counted as unpriced, not as free.

All aggregation runs in the database: the median is `percentile_cont` on
PostgreSQL and, on SQLite (which has none), a count and then the one or two
middle values by ORDER BY ... LIMIT/OFFSET: no more than two rows come back
to Python whatever the size of the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    and_,
    case,
    cast,
    extract,
    func,
    literal_column,
    select,
)
from sqlalchemy.orm import Session

from smsdispatch.config.routes import Route, RouteTable
from smsdispatch.store.destinations import price_of, route_of_number
from smsdispatch.store.models import messages, send_attempts
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
# No outcome yet: neither in the delivery rate nor left out of the picture.
PENDING = (
    MessageStatus.HELD,
    MessageStatus.QUEUED,
    MessageStatus.SENDING,
    MessageStatus.ACCEPTED,
    MessageStatus.UNKNOWN,
)
# The chart's bin widths, seconds: the smallest that keeps a period within
# MAX_BINS, so a one-minute run is drawn per second and an hour per minute.
BIN_WIDTHS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400)
MAX_BINS = 90


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
class VendorCost:
    provider: str
    messages: int  # submitted in the period
    sent: int  # handed to the vendor (sent_at set): what it bills
    segments: int  # of the sent messages
    cost: Decimal  # of the priced segments
    unpriced_segments: int  # sent segments the catalog gives no price for


@dataclass(frozen=True)
class Report:
    filter: ReportFilter
    counts: dict[tuple[str, str], int]  # (provider, status) -> messages
    median_delivery_seconds: dict[str | None, float | None]  # provider (None: all) -> seconds
    message_errors: list[CodeCount]  # final error codes (messages.error_code)
    attempt_errors: list[CodeCount]  # what vendors answered on calls that did not go through
    bin_seconds: int = 60  # the width of the chart's bins
    sends_per_bin: list[tuple[datetime, str, int]] = field(default_factory=list)
    outcomes_per_bin: list[tuple[datetime, str, int]] = field(default_factory=list)
    # provider (None: all) -> how many of the delivered messages' times are the vendor's own
    vendor_timed: dict[str | None, int] = field(default_factory=dict)
    costs: list[VendorCost] = field(default_factory=list)  # per vendor, by name

    @property
    def providers(self) -> list[str]:
        return sorted({p for p, _ in self.counts})

    def total(self, provider: str | None = None) -> int:
        return sum(n for (p, _), n in self.counts.items() if provider in (None, p))

    def count(self, statuses: Sequence[str], provider: str | None = None) -> int:
        """Messages in any of `statuses`, of one vendor or (None) of all."""
        return sum(
            n
            for (p, status), n in self.counts.items()
            if status in statuses and provider in (None, p)
        )

    def pending(self, provider: str | None = None) -> int:
        """Messages without an outcome yet (held, queued, sending, accepted, unknown)."""
        return self.count(PENDING, provider)

    def final(self, provider: str | None = None) -> int:
        """Messages in the delivery rate's denominator."""
        return self.count(FINAL_OUTCOMES, provider)

    def delivery_rate(self, provider: str | None = None) -> float | None:
        """delivered / (delivered + undelivered + expired + failed); None if none is final.
        Pending messages are in neither part."""
        final = self.final(provider)
        return self.count([MessageStatus.DELIVERED], provider) / final if final else None


def status_counts(session: Session, f: ReportFilter) -> dict[tuple[str, str], int]:
    m = messages.c
    stmt = (
        select(m.provider, m.status, func.count())
        .where(*f.conditions())
        .group_by(m.provider, m.status)
    )
    return {(p, s): n for p, s, n in session.execute(stmt)}


def _vendor_timed() -> ColumnElement[bool]:
    """The vendor said when it delivered, at or after we sent it."""
    m = messages.c
    return and_(m.vendor_final_at.is_not(None), m.vendor_final_at >= m.sent_at)


def _delivery_seconds(dialect: str) -> ColumnElement[Any]:
    m = messages.c
    delivered = case((_vendor_timed(), m.vendor_final_at), else_=m.final_at)
    if dialect == "postgresql":
        return extract("epoch", delivered - m.sent_at)
    # SQLite stores "YYYY-MM-DD HH:MM:SS.ffffff" in UTC: julianday's days, in
    # seconds (a double: about 20 microseconds of resolution).
    return (func.julianday(delivered) - func.julianday(m.sent_at)) * 86400.0


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
    """The median time from sent_at to delivery (the vendor's time where
    known, else final_at) over delivered messages (None if there are none)."""
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


def vendor_timed(session: Session, f: ReportFilter, provider: str | None = None) -> int:
    """How many delivered messages' delivery times are the vendor's own."""
    where = [*_delivered(f, provider), _vendor_timed()]
    return session.execute(select(func.count()).select_from(messages).where(*where)).scalar() or 0


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


def bin_seconds(span: timedelta) -> int:
    """The chart's bin width for events spread over `span`: the smallest of
    BIN_WIDTHS that needs no more than MAX_BINS bins (seconds for a one-minute
    run, minutes for an hour, hours for days), whatever period was asked for."""
    for width in BIN_WIDTHS:
        if span.total_seconds() / width <= MAX_BINS:
            return width
    return BIN_WIDTHS[-1]


def _bin(dialect: str, column: ColumnElement[datetime], width: int) -> ColumnElement[int]:
    """The start of the bin holding `column`, as whole seconds since the epoch."""
    if dialect == "postgresql":
        return cast(func.floor(extract("epoch", column) / width) * width, BigInteger)
    # SQLite: "%s" is whole seconds since the epoch; an integer division floors it.
    return cast(func.strftime("%s", column), Integer) // width * width


def _as_utc(value: datetime | str) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _vendor_calls(f: ReportFilter) -> list[ColumnElement[bool]]:
    # Attempts our own limiter or quiet hours deferred never reached the vendor.
    return [*f.conditions(), send_attempts.c.outcome != OutcomeKind.DEFERRED]


def _outcomes(f: ReportFilter) -> list[ColumnElement[bool]]:
    m = messages.c
    return [*f.conditions(), m.final_at.is_not(None), m.status.in_(FINAL_OUTCOMES)]


def activity_span(session: Session, f: ReportFilter) -> timedelta:
    """From the first send to the last send or final outcome: what the chart draws."""
    m, a = messages.c, send_attempts.c
    calls = session.execute(
        select(func.min(a.at), func.max(a.at))
        .select_from(send_attempts.join(messages, a.message_id == m.id))
        .where(*_vendor_calls(f))
    ).one()
    finals = session.execute(
        select(func.min(m.final_at), func.max(m.final_at)).where(*_outcomes(f))
    ).one()
    moments = [_as_utc(t) for t in (*calls, *finals) if t is not None]
    return max(moments) - min(moments) if moments else timedelta(0)


def sends_per_bin(session: Session, f: ReportFilter, width: int) -> list[tuple[datetime, str, int]]:
    """Messages handed to each vendor per bin (send_attempts.at, retries
    included): (bin start, provider, messages)."""
    m, a = messages.c, send_attempts.c
    start = _bin(session.get_bind().dialect.name, a.at, width).label("bin")
    stmt = (
        select(start, m.provider, func.count())
        .select_from(send_attempts.join(messages, a.message_id == m.id))
        .where(*_vendor_calls(f))
        .group_by(literal_column("bin"), m.provider)
        .order_by(literal_column("bin"), m.provider)
    )
    return [(_epoch(t), p, n) for t, p, n in session.execute(stmt)]


def outcomes_per_bin(
    session: Session, f: ReportFilter, width: int
) -> list[tuple[datetime, str, int]]:
    """Final outcomes per bin (messages.final_at) by status: (bin start, status, messages)."""
    m = messages.c
    start = _bin(session.get_bind().dialect.name, m.final_at, width).label("bin")
    stmt = (
        select(start, m.status, func.count())
        .where(*_outcomes(f))
        .group_by(literal_column("bin"), m.status)
        .order_by(literal_column("bin"), m.status)
    )
    return [(_epoch(t), s, n) for t, s, n in session.execute(stmt)]


def vendor_costs(session: Session, f: ReportFilter, routes: dict[str, Route]) -> list[VendorCost]:
    """Messages, billed segments and cost per vendor (see the module's docstring).

    One GROUP BY vendor and route (the stored one, else the number's): at most
    vendors x routes rows come back, whatever the number of messages.
    """
    m = messages.c
    route = func.coalesce(m.route, route_of_number(m.recipient, RouteTable(routes))).label("r")
    sent = m.sent_at.is_not(None)
    stmt = (
        select(
            m.provider,
            route,
            func.count(),
            func.count(m.sent_at),
            func.sum(case((sent, m.segments), else_=0)),
        )
        .where(*f.conditions())
        .group_by(m.provider, literal_column("r"))
    )
    totals: dict[str, list[Any]] = {}
    for provider, route_name, count, sent_count, segments in session.execute(stmt):
        row = totals.setdefault(provider, [0, 0, 0, Decimal(0), 0])
        billed = int(segments or 0)
        price = price_of(routes, route_name, provider)
        row[0] += int(count)
        row[1] += int(sent_count)
        row[2] += billed
        if price is None:
            row[4] += billed
        else:
            row[3] += billed * price
    return [VendorCost(p, *totals[p]) for p in sorted(totals)]


def _epoch(seconds: int) -> datetime:
    return datetime.fromtimestamp(int(seconds), UTC)


def build_report(
    session: Session, f: ReportFilter, *, top: int = 10, routes: dict[str, Route] | None = None
) -> Report:
    """The report; `routes` (the catalog's) prices it, without them no costs."""
    counts = status_counts(session, f)
    providers: Sequence[str | None] = [None, *sorted({p for p, _ in counts})]
    width = bin_seconds(activity_span(session, f))
    return Report(
        filter=f,
        counts=counts,
        median_delivery_seconds={p: median_delivery_seconds(session, f, p) for p in providers},
        vendor_timed={p: vendor_timed(session, f, p) for p in providers},
        message_errors=top_message_errors(session, f, top),
        attempt_errors=top_attempt_errors(session, f, top),
        bin_seconds=width,
        sends_per_bin=sends_per_bin(session, f, width),
        outcomes_per_bin=outcomes_per_bin(session, f, width),
        costs=vendor_costs(session, f, routes) if routes is not None else [],
    )
