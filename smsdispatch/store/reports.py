"""Applying delivery reports and status-query answers: forward only, idempotent.

A message's status only moves forward in its lifecycle:

    queued / sending ──┐
    unknown ───────────┼──> accepted ──> delivered | undelivered | expired | failed
                       └──────────────────────────^  (final: never changed again)

Each report is applied by an UPDATE whose WHERE names the statuses the
report may move the message from, so two reports racing for one row (two
webhook requests, a webhook and a poll) cannot move it backwards whatever
order their transactions commit in: the second sees the first's status and
matches nothing. A late "sent" after "delivered", or the same report twice, changes
nothing. An intermediate report ("sent to network") updates the vendor's
word on an `accepted` message and settles an `unknown` one as `accepted`.

A final report may also settle a message still `queued` or `sending`: a
vendor that names our reference (Cue) can report before the worker recorded the
send, or after a timeout that queued a (safe) resend; the resend is then not
made, and the worker's own update, which requires `sending`, matches nothing.

Every report is stored raw in `delivery_reports` with what it did.

A caller that passes a `finals` list learns of every message a report moved
to a final status (`Final`: vendor, delivered or not, time to delivery):
only the UPDATE that moves a message into a final status returns it, so a
repeated report, or two racing, name it once. The caller counts them after
its commit (routing/delivery.py), never inside the transaction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cache
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Integer,
    Select,
    String,
    Text,
    Update,
    and_,
    bindparam,
    case,
    cast,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy import column as sa_column
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnClause, ColumnElement
from sqlalchemy.sql.selectable import TableValuedAlias

from smsdispatch.store.bulk import chunked
from smsdispatch.store.models import UTCDateTime, delivery_reports, messages
from smsdispatch.vocabulary.delivery import DeliveryReport
from smsdispatch.vocabulary.message import Encoding, OutboundMessage
from smsdispatch.vocabulary.status import MessageStatus

S = MessageStatus

# What each kind of report may move a message from.
FINAL_FROM = (S.QUEUED, S.SENDING, S.ACCEPTED, S.UNKNOWN)
INTERMEDIATE_FROM = (S.ACCEPTED, S.UNKNOWN)

RAW_LIMIT = 8000


@dataclass(frozen=True, slots=True)
class Final:
    """A message a report moved to a final status, for the vendor's delivery figures."""

    provider: str
    status: MessageStatus
    # From our record of the send to the vendor's time of the report where
    # it gave one (never later than our receipt of it); None if not delivered.
    seconds: float | None

    @property
    def delivered(self) -> bool:
        return self.status is S.DELIVERED


def _final(
    provider: str,
    report: DeliveryReport,
    sent_at: datetime | None,
    final_at: datetime | None,
    vendor_final_at: datetime | None,
) -> Final:
    """What a final report that moved its message says of its vendor.

    The vendor's own time is preferred (our receipt adds the report's trip
    and our batching), but a vendor clock ahead of ours cannot make a
    delivery later than we heard of it; one behind ours counts as at once.
    """
    if report.status is not S.DELIVERED or sent_at is None or final_at is None:
        return Final(provider, report.status, None)
    done = min(vendor_final_at, final_at) if vendor_final_at is not None else final_at
    return Final(provider, report.status, max(0.0, (done - sent_at).total_seconds()))


class Applied(StrEnum):
    APPLIED = "applied"  # the message moved forward, or its vendor status was updated
    IGNORED = "ignored"  # the message is already there or further: a late or repeated report
    UNMATCHED = "unmatched"  # no message of this vendor carries this id yet: kept (apply_kept)
    MALFORMED = "malformed"  # the body could not be read as a report


def apply_report(
    session: Session,
    provider: str,
    report: DeliveryReport,
    now: datetime,
    *,
    source: str = "webhook",
    finals: list[Final] | None = None,
) -> Applied:
    """One report (see `apply_reports`)."""
    return apply_reports(session, [(provider, report)], now, source=source, finals=finals)[0]


def apply_reports(
    session: Session,
    reports: Sequence[tuple[str, DeliveryReport]],
    now: datetime,
    *,
    source: str = "webhook",
    finals: list[Final] | None = None,
) -> list[Applied]:
    """Apply reports, in the order given, in the caller's transaction; return
    what each did; `finals` gets the messages moved to a final status.

    Each is matched by the vendor's id, else by our reference as the vendor
    echoed it, and applied by a forward-only UPDATE (tried once more if its
    message was recorded while the first ran: `_forward_or_past`); all are
    stored raw in one INSERT. One that matches nothing is stored `unmatched`: it may have
    come before the worker recorded the vendor's id, and the transaction
    that records it applies it then (`apply_kept`).
    """
    applied = _apply_all(session, reports, now, finals)
    raw_rows = [
        _raw_row(provider, report, now, result, message_id, source)
        for (provider, report), (result, message_id) in zip(reports, applied, strict=True)
    ]
    if _batched(session, len(raw_rows)):
        session.execute(_KEEP_TOGETHER, _raw_arrays(raw_rows))
    elif raw_rows:
        session.execute(insert(delivery_reports), raw_rows)
    return [result for result, _ in applied]


Matched = tuple[Applied, int | None]


def _batched(session: Session, count: int) -> bool:
    """Whether `count` reports go in a few statements for all (PostgreSQL)."""
    return session.get_bind().dialect.name == "postgresql" and count > 1


def _apply_all(
    session: Session,
    reports: Sequence[tuple[str, DeliveryReport]],
    now: datetime,
    finals: list[Final] | None = None,
) -> list[Matched]:
    """What each report did, applied in the order given (no raw copy kept)."""
    into = [] if finals is None else finals
    if _batched(session, len(reports)):
        return _apply_together(session, reports, now, into)
    return [_apply_one(session, provider, report, now, into) for provider, report in reports]


def _apply_together(
    session: Session,
    reports: Sequence[tuple[str, DeliveryReport]],
    now: datetime,
    finals: list[Final],
) -> list[Matched]:
    """The same as `_apply_one` for each report in turn, in a few statements
    (PostgreSQL): one UPDATE ... FROM unnest(...) per key and turn.

    A message named by several reports of the batch gets them in turns, in
    the order they came (turn n holds each key's n-th report), so one
    statement never holds two reports for one row and forward-only still
    decides between them. The vendor's id is tried first, then our
    reference, each for all reports of the turn at once.
    """
    outcomes: list[Matched | None] = [None] * len(reports)
    turns: list[list[int]] = []
    seen: Counter[tuple[str, str | None, str | None]] = Counter()
    for index, (provider, report) in enumerate(reports):
        key = (provider, report.tracking_id, None if report.tracking_id else report.reference)
        nth = seen[key]
        seen[key] += 1
        if nth == len(turns):
            turns.append([])
        turns[nth].append(index)
    for members in turns:
        left = members
        for column in (messages.c.tracking_id, messages.c.reference):
            left = _forward_together(session, reports, left, column, now, outcomes, finals)
        for index in left:
            outcomes[index] = (Applied.UNMATCHED, None)
    return [outcome or (Applied.UNMATCHED, None) for outcome in outcomes]


def _forward_together(
    session: Session,
    reports: Sequence[tuple[str, DeliveryReport]],
    indexes: list[int],
    column: Column[Any],
    now: datetime,
    outcomes: list[Matched | None],
    finals: list[Final],
) -> list[int]:
    """The forward-only UPDATE for the reports at `indexes` that name a value
    of `column`, with `_forward_or_past`'s second try for those whose message
    appeared meanwhile; records what each did and returns the indexes it
    found no message for."""
    by_tracking = column is messages.c.tracking_id
    named = {
        i: (report.tracking_id if by_tracking else report.reference)
        for i in indexes
        for report in [reports[i][1]]
    }
    asked = [i for i in indexes if named[i] is not None]
    if not asked:
        return indexes
    moved = _update_together(session, reports, asked, named, column, now, finals)
    missed = [i for i in asked if i not in moved]
    found = _look_together(session, reports, missed, named, column) if missed else {}
    # Missed by the UPDATE although it moves its message forward: the message
    # was recorded after the UPDATE began (`_forward_or_past`). Once more.
    appeared = [i for i in missed if i in found and found[i][1]]
    if appeared:
        moved |= _update_together(session, reports, appeared, named, column, now, finals)
    left = [i for i in indexes if named[i] is None]
    for index in asked:
        if index in moved:
            outcomes[index] = (Applied.APPLIED, moved[index])
        elif index in found:
            outcomes[index] = (Applied.IGNORED, found[index][0])
        else:
            left.append(index)
    return sorted(left)


def _update_together(
    session: Session,
    reports: Sequence[tuple[str, DeliveryReport]],
    indexes: list[int],
    named: dict[int, str | None],
    column: Column[Any],
    now: datetime,
    finals: list[Final],
) -> dict[int, int]:
    """One forward-only UPDATE for the reports at `indexes`, matched on
    `column`; the message each moved, by index (a final one also in `finals`)."""
    params = _arrays(reports, indexes, named)
    params["b_now"] = now
    moved = session.execute(_together(column is messages.c.tracking_id).update, params)
    out = {}
    for index, message_id, sent_at, final_at, vendor_final_at in moved.all():
        out[index] = message_id
        provider, report = reports[index]
        if report.final:
            finals.append(_final(provider, report, sent_at, final_at, vendor_final_at))
    return out


def _look_together(
    session: Session,
    reports: Sequence[tuple[str, DeliveryReport]],
    indexes: list[int],
    named: dict[int, str | None],
    column: Column[Any],
) -> dict[int, tuple[int, bool]]:
    """The message each report at `indexes` names, where there is one, and
    whether the report would move it forward now."""
    params = _arrays(reports, indexes, named)
    rows = session.execute(_together(column is messages.c.tracking_id).look, params)
    found: dict[int, tuple[int, bool]] = {}
    for index, message_id, forward in rows:
        found.setdefault(index, (message_id, bool(forward)))
    return found


# The columns of a batch's reports, one array parameter each.
_REPORT_COLUMNS = {
    "idx": Integer,
    "provider": String,
    "key": String,
    "status": String,
    "vendor_status": String,
    "error_code": String,
    "error_reason": Text,
    "tracking": String,
    "final": Boolean,
    "vendor_at": UTCDateTime,
}


def _arrays(
    reports: Sequence[tuple[str, DeliveryReport]], indexes: list[int], named: dict[int, str | None]
) -> dict[str, Any]:
    """The reports at `indexes` as `_together`'s parameters: one list per column."""
    assert indexes, "a batch statement needs at least one report"
    rows = [_report_row(i, reports[i], named[i]) for i in indexes]
    columns = zip(*rows, strict=True)
    return {f"b_{name}": list(c) for name, c in zip(_REPORT_COLUMNS, columns, strict=True)}


@dataclass(frozen=True, slots=True)
class _Together:
    """A batch's two statements for one key column (the vendor's id, or ours)."""

    update: Update
    look: Select[Any]


@cache
def _together(by_tracking: bool) -> _Together:
    """A batch's statements, over unnest(<one array per column>): the same
    text for every batch, with nine parameters whatever its size. (A VALUES
    list of bound literals was a new statement of nine parameters per report
    each time: compiling it and converting its parameters cost the API
    process a fifth of its time.)"""
    m = messages.c
    v = _unnest("v", [sa_column(name, t) for name, t in _REPORT_COLUMNS.items()])
    column = m.tracking_id if by_tracking else m.reference
    named = and_(m.provider == v.c.provider, column == v.c.key)
    # The messages the batch names, found first by the key's index and kept
    # (MATERIALIZED), then updated by id. Joined in one step, the planner
    # could take the status condition to an index of its own and scan every
    # message not yet final, and the dead entries status updates leave
    # there: 30,000 entries for a batch of 100 reports in `bench.reports`.
    t = (
        select(m.id.label("target"), *v.c)
        .join_from(v, messages, named)
        .cte("t")
        .prefix_with("MATERIALIZED")
    )
    now = bindparam("b_now", type_=m.updated_at.type)
    update_ = (
        update(messages)
        # The key again: rechecked, like the rest, on a row another
        # transaction changed since the CTE read it.
        .where(
            m.id == t.c.target,
            m.provider == t.c.provider,
            column == t.c.key,
            _moves_forward(t.c.final, t.c.vendor_status),
        )
        .values(
            _forward_values(
                status=t.c.status,
                vendor_status=t.c.vendor_status,
                error_code=t.c.error_code,
                error_reason=t.c.error_reason,
                tracking=t.c.tracking,
                final=t.c.final,
                now=now,
                vendor_at=t.c.vendor_at,
            )
        )
        .returning(t.c.idx, m.id, m.sent_at, m.final_at, m.vendor_final_at)
    )
    look = select(v.c.idx, m.id, _moves_forward(v.c.final, v.c.vendor_status)).join_from(
        v, messages, named
    )
    return _Together(update_, look)


def _report_row(
    index: int, item: tuple[str, DeliveryReport], key: str | None
) -> tuple[object, ...]:
    provider, report = item
    return (
        index,
        provider,
        key,
        report.status.value,
        report.vendor_status[:64],
        report.error_code,
        report.error_reason,
        report.tracking_id,
        report.final,
        report.vendor_at,
    )


def _apply_one(
    session: Session,
    provider: str,
    report: DeliveryReport,
    now: datetime,
    finals: list[Final],
) -> tuple[Applied, int | None]:
    m = messages.c
    matchers: list[ColumnElement[bool]] = []
    if report.tracking_id is not None:
        matchers.append(m.tracking_id == report.tracking_id)
    if report.reference is not None:
        matchers.append(m.reference == report.reference)
    for match in matchers:
        matched = _forward_or_past(session, provider, match, report, now, finals)
        if matched is not None:
            return matched
    return Applied.UNMATCHED, None


def _forward_or_past(
    session: Session,
    provider: str,
    match: ColumnElement[bool],
    report: DeliveryReport,
    now: datetime,
    finals: list[Final],
) -> Matched | None:
    """The forward-only UPDATE for the message `match` names: APPLIED, or
    IGNORED if the message is there but already further along; None if
    there is no such message.

    Each statement sees what was committed when it began (READ COMMITTED):
    a send recorded after the UPDATE began but before the look for the
    message is seen by the look and was not by the UPDATE. Taken for "further
    along", such a report would be lost; so the look also asks whether the
    report would move the message now, and if so the UPDATE runs once more
    (it sees the message); only what that one leaves is ignored.
    """
    message_id = _forward(session, provider, match, report, now, finals)
    if message_id is not None:
        return Applied.APPLIED, message_id
    forward = _moves_forward(report.final, report.vendor_status[:64])
    found = session.execute(
        select(messages.c.id, forward).where(messages.c.provider == provider, match).limit(1)
    ).first()
    if found is None:
        return None
    if not found[1]:  # there, and already further along: late or repeated
        return Applied.IGNORED, found[0]
    message_id = _forward(session, provider, match, report, now, finals)
    return (Applied.APPLIED, message_id) if message_id is not None else (Applied.IGNORED, found[0])


def _forward(
    session: Session,
    provider: str,
    match: ColumnElement[bool],
    report: DeliveryReport,
    now: datetime,
    finals: list[Final],
) -> int | None:
    """The one forward-only UPDATE; the id of the message it moved, if any
    (and, if the report moved it to a final status, the message in `finals`)."""
    vendor_status = report.vendor_status[:64]
    stmt = (
        update(messages)
        .where(
            messages.c.provider == provider,
            match,
            _moves_forward(report.final, vendor_status),
        )
        .values(
            _forward_values(
                status=report.status.value,
                vendor_status=vendor_status,
                error_code=report.error_code,
                error_reason=report.error_reason,
                tracking=report.tracking_id,
                final=report.final,
                now=now,
                vendor_at=report.vendor_at,
            )
        )
        .returning(
            messages.c.id, messages.c.sent_at, messages.c.final_at, messages.c.vendor_final_at
        )
    )
    row = session.execute(stmt).first()
    if row is None:
        return None
    if report.final:
        finals.append(_final(provider, report, row.sent_at, row.final_at, row.vendor_final_at))
    return int(row.id)


def _moves_forward(final: bool | ColumnElement[bool], vendor_status: Any) -> ColumnElement[bool]:
    """The forward-only rule (module docstring), for one report (`final` a
    bool) or for each row of a batch's arrays (`final` its column)."""
    m = messages.c
    as_final = m.status.in_([s.value for s in FINAL_FROM])
    # A repeated intermediate report is a no-op, not a rewrite.
    as_intermediate = and_(
        m.status.in_([s.value for s in INTERMEDIATE_FROM]),
        or_(m.status != S.ACCEPTED.value, m.vendor_status.is_distinct_from(vendor_status)),
    )
    if isinstance(final, bool):
        return as_final if final else as_intermediate
    return or_(and_(final, as_final), and_(~final, as_intermediate))


def _forward_values(
    *,
    status: Any,
    vendor_status: Any,
    error_code: Any,
    error_reason: Any,
    tracking: Any,
    final: bool | ColumnElement[bool],
    now: datetime | ColumnElement[datetime],
    vendor_at: datetime | ColumnElement[datetime] | None,
) -> dict[str, Any]:
    """What a report moving its message forward writes (values or columns).
    A final report keeps the vendor's time of it, where it carries one."""
    m = messages.c
    if isinstance(final, bool):
        final_at: Any = now if final else m.final_at
        vendor_final_at: Any = vendor_at if final else m.vendor_final_at
    else:
        final_at = case((final, now), else_=m.final_at)
        vendor_final_at = case((final, vendor_at), else_=m.vendor_final_at)
    return {
        "status": status,
        "vendor_status": vendor_status,
        "error_code": error_code,
        "error_reason": error_reason,
        # A report may carry the vendor's id where the send never recorded it.
        "tracking_id": func.coalesce(m.tracking_id, tracking),
        "sent_at": func.coalesce(m.sent_at, now),
        "updated_at": now,
        "final_at": final_at,
        "vendor_final_at": vendor_final_at,
    }


def record(
    session: Session,
    provider: str,
    report: DeliveryReport | None,
    now: datetime,
    result: Applied,
    *,
    raw: str | None = None,
    message_id: int | None = None,
    source: str = "webhook",
) -> None:
    """Keep the report as the vendor sent it, with what it did."""
    session.execute(
        insert(delivery_reports).values(
            _raw_row(provider, report, now, result, message_id, source, raw=raw)
        )
    )


def _unnest(
    name: str, columns: Sequence[ColumnClause[Any]], *, ordinality: str | None = None
) -> TableValuedAlias:
    """FROM unnest(<one array parameter per column>) AS name(<columns>)
    (PostgreSQL): a batch of any size in one statement of fixed text.

    The arrays are of unbounded strings: a value longer than its column is
    refused when it is written, as a plain INSERT or UPDATE would (an
    explicit cast to VARCHAR(n) would cut it without a word). `ordinality`
    names a column numbering the rows in array order."""
    types = [String() if isinstance(c.type, String) and c.type.length else c.type for c in columns]
    return (
        func.unnest(
            *(
                cast(bindparam(f"b_{c.name}", type_=ARRAY(t)), ARRAY(t))
                for c, t in zip(columns, types, strict=True)
            )
        )
        .table_valued(
            *(sa_column(c.name, t) for c, t in zip(columns, types, strict=True)),
            with_ordinality=ordinality,
        )
        .render_derived(name=name)
    )


_RAW_COLUMNS = [c for c in delivery_reports.c if c.name not in ("id",)]
_raw_values = _unnest("r", _RAW_COLUMNS, ordinality="n")
# In the order the reports came: kept reports are applied in id order.
_KEEP_TOGETHER = insert(delivery_reports).from_select(
    [c.name for c in _RAW_COLUMNS],
    select(*(_raw_values.c[c.name] for c in _RAW_COLUMNS)).order_by(_raw_values.c.n),
)


def _raw_arrays(rows: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    """`_raw_row`s as `_KEEP_TOGETHER`'s parameters: one list per column."""
    return {f"b_{c.name}": [row[c.name] for row in rows] for c in _RAW_COLUMNS}


def _raw_row(
    provider: str,
    report: DeliveryReport | None,
    now: datetime,
    result: Applied,
    message_id: int | None,
    source: str,
    *,
    raw: str | None = None,
) -> dict[str, Any]:
    return {
        "provider": provider,
        "source": source,
        "message_id": message_id,
        "tracking_id": report.tracking_id if report else None,
        "vendor_status": report.vendor_status[:64] if report else None,
        "status": report.status.value if report else None,
        "raw": (report.raw if report else raw or "")[:RAW_LIMIT],
        "received_at": now,
        "vendor_at": report.vendor_at if report else None,
        "applied": result is Applied.APPLIED,
        "outcome": result.value,
    }


def apply_kept(
    session: Session,
    tracking_ids: Collection[str],
    now: datetime,
    *,
    finals: list[Final] | None = None,
) -> set[str]:
    """Apply the reports kept for these vendor ids; the ids they moved
    (`finals`: as for `apply_reports`).

    The normal path for a report that races its send: a vendor naming only
    its own id (SMSBuddy, Restcomm, Skycore) can report before the worker
    has recorded that id. The webhook keeps such a report `unmatched` and
    answers at once; the worker's transaction that records the id applies
    it (forward only, as ever), so it holds no request and no wait.

    Both transactions can miss each other (each reads before the other
    commits), so the webhook looks again right after its own commit, and
    reconciliation's `reapply_unmatched` catches what is left.
    """
    if not tracking_ids:
        return set()
    r = delivery_reports.c
    moved: set[str] = set()
    for chunk in chunked(sorted(tracking_ids)):
        moved |= _apply_kept_rows(
            session,
            _kept_reports().where(r.tracking_id.in_(chunk)).order_by(r.id),
            now,
            finals,
        )
    return moved


def reapply_unmatched(
    session: Session, now: datetime, within_seconds: float, *, finals: list[Final] | None = None
) -> int:
    """Apply the recent reports that matched no message when they came, the
    newest first: the safety net for a send recorded by another path (the
    sweeper writing a dead worker's answers, reconciliation finding the
    vendor's id) or a race `apply_kept` lost. Returns how many were applied.
    """
    r = delivery_reports.c
    return len(
        _apply_kept_rows(
            session,
            _kept_reports()
            .where(
                r.received_at >= now - timedelta(seconds=within_seconds),
                r.tracking_id.is_not(None),
                r.status.is_not(None),
            )
            .order_by(r.id.desc())
            .limit(1000),
            now,
            finals,
        )
    )


def _kept_reports() -> Select[Any]:
    """The reports still waiting for their send (`unmatched`), as
    `_apply_kept_rows` reads them."""
    r = delivery_reports.c
    return select(
        r.id, r.provider, r.tracking_id, r.status, r.vendor_status, r.raw, r.vendor_at
    ).where(r.outcome == Applied.UNMATCHED.value)


def _apply_kept_rows(
    session: Session, query: Select[Any], now: datetime, finals: list[Final] | None = None
) -> set[str]:
    """Apply each kept report its message now carries the id of, and mark it
    applied; one whose message is there but already further along (a repeat,
    a "sent" after the final report) is marked ignored, so that only reports
    still waiting for their send stay `unmatched`.

    Together, as the webhooks' batches are: at every vendor's ceiling a
    quarter of all reports come before their send is recorded, and applied
    one at a time they held each worker's write for hundreds of statements.
    """
    # Applied in the order they came, whatever order the query chose them in
    # (reconciliation takes the newest first).
    rows = sorted(
        (row for row in session.execute(query).all() if row.status is not None),
        key=lambda row: row.id,
    )
    kept = [
        (
            row.provider,
            DeliveryReport(
                MessageStatus(row.status),
                row.vendor_status or "",
                row.tracking_id,
                raw=row.raw,
                vendor_at=row.vendor_at,
            ),
        )
        for row in rows
    ]
    matched = _apply_all(session, kept, now, finals)
    marks = [
        {
            "b_id": row.id,
            "b_outcome": outcome.value,
            "b_applied": outcome is Applied.APPLIED,
            "b_message": message_id,
        }
        for row, (outcome, message_id) in zip(rows, matched, strict=True)
        if outcome is not Applied.UNMATCHED  # its send is still not recorded
    ]
    if marks:
        session.execute(_MARK_KEPT, marks)
    return {
        row.tracking_id
        for row, (outcome, _) in zip(rows, matched, strict=True)
        if outcome is Applied.APPLIED
    }


_MARK_KEPT = (
    update(delivery_reports)
    # Only a report still waiting: another transaction applying the same
    # kept reports (the webhook's second look, reconciliation) may have
    # marked it first, and its mark stands.
    .where(
        delivery_reports.c.id == bindparam("b_id"),
        delivery_reports.c.outcome == Applied.UNMATCHED.value,
    )
    .values(
        outcome=bindparam("b_outcome"),
        applied=bindparam("b_applied"),
        message_id=bindparam("b_message"),
    )
)


@dataclass(frozen=True, slots=True)
class Stale:
    """A message reconciliation should ask its vendor about."""

    id: int
    provider: str
    tracking_id: str
    status: str


def stale_messages(
    session: Session, provider: str, now: datetime, after_seconds: float, limit: int
) -> list[Stale]:
    """The vendor's messages a status query may settle, least recently asked first.

    That is: `accepted` for `after_seconds` with no final report, and
    `unknown` ones whose tracking id is known; none asked within the last
    `after_seconds`, so a message the vendor keeps calling "sent" is asked
    again only that often and the others get their turn.
    """
    m = messages.c
    before = now - timedelta(seconds=after_seconds)
    rows = session.execute(
        select(m.id, m.provider, m.tracking_id, m.status)
        .where(
            m.provider == provider,
            m.tracking_id.is_not(None),
            or_(
                and_(m.status == S.ACCEPTED.value, m.sent_at < before),
                m.status == S.UNKNOWN.value,
            ),
            or_(m.polled_at.is_(None), m.polled_at < before),
        )
        .order_by(func.coalesce(m.polled_at, m.sent_at))
        .limit(limit)
    )
    return [Stale(r.id, r.provider, r.tracking_id, r.status) for r in rows]


@dataclass(frozen=True, slots=True)
class Untracked:
    """An `unknown` message without the vendor's id: what a search needs."""

    message: OutboundMessage
    claimed_at: datetime
    sent_at: datetime


def untracked_unknown(
    session: Session,
    provider: str,
    now: datetime,
    after_seconds: float,
    limit: int,
    *,
    listed_after_seconds: float = 0.0,
) -> list[Untracked]:
    """The vendor's `unknown` messages with no tracking id (the answer to the
    send was lost), given up on at least `listed_after_seconds` ago (the
    vendor has had time to list them) and not searched for within the last
    `after_seconds`."""
    m = messages.c
    before = now - timedelta(seconds=after_seconds)
    rows = session.execute(
        select(
            m.id,
            m.reference,
            m.reference_in_doubt,
            m.recipient,
            m.sender,
            m.text,
            m.encoding,
            m.segments,
            m.claimed_at,
            m.sent_at,
        )
        .where(
            m.provider == provider,
            m.status == S.UNKNOWN.value,
            m.tracking_id.is_(None),
            m.claimed_at.is_not(None),
            m.sent_at < now - timedelta(seconds=listed_after_seconds),
            or_(m.polled_at.is_(None), m.polled_at < before),
        )
        .order_by(func.coalesce(m.polled_at, m.sent_at))
        .limit(limit)
    )
    return [
        Untracked(
            OutboundMessage(
                r.id,
                r.reference,
                r.recipient,
                r.sender,
                r.text,
                Encoding(r.encoding),
                r.segments,
                reference_in_doubt=r.reference_in_doubt,
            ),
            r.claimed_at,
            r.sent_at,
        )
        for r in rows
    ]


def resend_absent(session: Session, message_id: int, provider: str, now: datetime) -> bool:
    """Queue an `unknown` message again: the vendor has no record of it, so
    sending it again cannot send it twice. The attempt stays counted."""
    m = messages.c
    result = session.execute(
        update(messages)
        .where(m.id == message_id, m.status == S.UNKNOWN.value, m.tracking_id.is_(None))
        .values(
            status=S.QUEUED.value,
            next_attempt_at=now,
            enqueued_at=None,
            sent_at=None,
            error_code="not_at_vendor",
            error_reason=f"{provider} has no record of it: sent again",
            updated_at=now,
        )
    )
    return bool(getattr(result, "rowcount", 0))


def tracked_elsewhere(session: Session, provider: str, tracking_ids: Sequence[str]) -> set[str]:
    """Which of these vendor ids another message of ours already carries."""
    if not tracking_ids:
        return set()
    m = messages.c
    return set(
        session.scalars(
            select(m.tracking_id).where(m.provider == provider, m.tracking_id.in_(tracking_ids))
        )
    )


def mark_polled(session: Session, ids: Sequence[int], now: datetime) -> None:
    for chunk in chunked(ids):
        session.execute(update(messages).where(messages.c.id.in_(chunk)).values(polled_at=now))
