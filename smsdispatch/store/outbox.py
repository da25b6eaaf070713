"""The outbox queries: claim, persist, and sweep, each one statement per batch.

A row is claimed by moving it from `queued` to `sending` and adding one to
`attempts`; the new `attempts` value is the claim. Persisting checks the
claim, so a worker that was presumed dead and whose rows were handed to
another cannot overwrite the newer attempt's result.
"""

from __future__ import annotations

import logging
import secrets
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, bindparam, func, insert, or_, select, update
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from smsdispatch.store.bulk import chunked
from smsdispatch.store.models import messages, send_attempts
from smsdispatch.store.reports import Final, apply_kept
from smsdispatch.store.results import AttemptRecord, ClaimRef, RowUpdate, SendResult, claim_key
from smsdispatch.vocabulary.message import Encoding, OutboundMessage
from smsdispatch.vocabulary.status import MessageStatus

log = logging.getLogger(__name__)

# What the database says of a value it will not store (too wide for its
# column, a broken constraint): the statement is wrong, not the connection.
REFUSED = (DataError, IntegrityError)


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    reference: str
    provider: str
    sender: str
    recipient: str
    text: str
    encoding: str
    segments: int
    attempts: int
    claim_token: str
    reference_in_doubt: bool
    campaign_id: int | None = None
    params: list[str] | None = None
    route: str | None = None  # set when routing chose the vendor: it may fail over
    priority: int = 0  # 1: urgent (a one-time password): fails over to the fastest

    @property
    def ref(self) -> ClaimRef:
        return ClaimRef(self.id, self.claim_token, self.attempts)

    def outbound(self, template: str | None = None) -> OutboundMessage:
        """What the adapter sends; `template`: the campaign's, in positional form."""
        params = tuple(self.params or ())
        return OutboundMessage(
            self.id,
            self.reference,
            self.recipient,
            self.sender,
            self.text,
            Encoding(self.encoding),
            self.segments,
            template if self.params is not None else None,
            params,
            reference_in_doubt=self.reference_in_doubt,
        )


# Every process reads the database's clock (store/clock.py), each carried on
# its own monotonic clock between readings, so two of them differ by
# milliseconds; a row the sweeper found due must not look early to the worker.
CLOCK_SKEW = timedelta(seconds=2)


def new_claim_token() -> str:
    return secrets.token_hex(8)


_CLAIMED = (
    messages.c.id,
    messages.c.reference,
    messages.c.provider,
    messages.c.sender,
    messages.c.recipient,
    messages.c.text,
    messages.c.encoding,
    messages.c.segments,
    messages.c.attempts,
    messages.c.claim_token,
    messages.c.reference_in_doubt,
    messages.c.campaign_id,
    messages.c.params,
    messages.c.route,
    messages.c.priority,
)


def claim(
    session: Session, ids: Sequence[int], now: datetime, token: str, *, again: bool = False
) -> list[Claimed]:
    """Move due `queued` rows among `ids` to `sending` under `token`; return
    what was claimed.

    Rows another worker holds, rows already settled and rows not yet due are
    skipped: a redelivered or duplicated Celery message claims nothing.
    `again`: this claim was tried before and may have committed unseen (the
    connection dropped with the answer), so rows already claimed under the
    same token are ours as well.
    """
    if not ids:
        return []
    m = messages.c
    stmt = (
        update(messages)
        .where(
            m.id.in_(ids),
            m.status == MessageStatus.QUEUED,
            m.next_attempt_at <= now + CLOCK_SKEW,
        )
        .values(
            status=MessageStatus.SENDING,
            attempts=m.attempts + 1,
            claim_token=token,
            claimed_at=now,
            updated_at=now,
        )
        .returning(*_CLAIMED)
    )
    claimed = [Claimed(*row) for row in session.execute(stmt)]
    if again:
        ours = select(*_CLAIMED).where(
            m.id.in_(ids), m.status == MessageStatus.SENDING, m.claim_token == token
        )
        seen = {c.id for c in claimed}
        claimed += [Claimed(*row) for row in session.execute(ours) if row.id not in seen]
    return claimed


_PERSIST = (
    update(messages)
    .where(
        messages.c.id == bindparam("b_id"),
        messages.c.status == MessageStatus.SENDING,
        messages.c.claim_token == bindparam("b_claim"),
    )
    .values(
        status=bindparam("b_status"),
        attempts=bindparam("b_attempts"),
        next_attempt_at=func.coalesce(
            bindparam("b_next", type_=messages.c.next_attempt_at.type), messages.c.next_attempt_at
        ),
        tracking_id=func.coalesce(
            bindparam("b_tracking", type_=messages.c.tracking_id.type), messages.c.tracking_id
        ),
        sender=func.coalesce(
            bindparam("b_sender", type_=messages.c.sender.type), messages.c.sender
        ),
        provider=func.coalesce(
            bindparam("b_provider", type_=messages.c.provider.type), messages.c.provider
        ),
        vendor_status=bindparam("b_vendor_status"),
        error_code=bindparam("b_code"),
        error_reason=bindparam("b_reason"),
        sent_at=func.coalesce(
            bindparam("b_sent", type_=messages.c.sent_at.type), messages.c.sent_at
        ),
        final_at=bindparam("b_final", type_=messages.c.final_at.type),
        reference_in_doubt=func.coalesce(
            bindparam("b_doubt", type_=messages.c.reference_in_doubt.type),
            messages.c.reference_in_doubt,
        ),
        reference=func.coalesce(
            bindparam("b_reference", type_=messages.c.reference.type), messages.c.reference
        ),
        updated_at=bindparam("b_now", type_=messages.c.updated_at.type),
    )
)


# A report that names our reference (Cue's, for one) can settle a row while
# its worker is still sending (store/reports.py); the worker's answer then
# only adds the vendor's id the report did not carry.
_ADD_TRACKING = (
    update(messages)
    .where(
        messages.c.id == bindparam("b_id"),
        messages.c.claim_token == bindparam("b_claim"),
        # Final: only a final report settles a row still `sending` (an IN list
        # would be an expanding parameter, which executemany cannot take).
        messages.c.final_at.is_not(None),
        messages.c.tracking_id.is_(None),
    )
    .values(tracking_id=bindparam("b_tracking"))
)


def _tracking_params(params: dict[str, object]) -> dict[str, object]:
    """`_ADD_TRACKING`'s parameters, from a row's `_PERSIST` parameters."""
    return {k: params[k] for k in ("b_id", "b_claim", "b_tracking")}


def apply_updates(session: Session, updates: Sequence[RowUpdate], now: datetime) -> None:
    """Write every row's new state in one executemany statement (a second,
    only if some rows were settled by a report first)."""
    if not updates:
        return
    params = [_persist_params(u, now) for u in updates]
    written = session.execute(_PERSIST, params)
    exact = session.get_bind().dialect.supports_sane_multi_rowcount
    if exact and getattr(written, "rowcount", -1) == len(params):
        return
    tracked = [_tracking_params(p) for p in params if p["b_tracking"]]
    if tracked:
        session.execute(_ADD_TRACKING, tracked)


def _fit(value: str | None, column: Column[Any]) -> str | None:
    """A vendor's value cut to its column: a vendor that sends a longer id or
    code than any it documents must not cost the row its result."""
    length = getattr(column.type, "length", None)
    return value[:length] if value is not None and length else value


def _persist_params(u: RowUpdate, now: datetime) -> dict[str, object]:
    m = messages.c
    return {
        "b_id": u.id,
        "b_claim": u.claim,
        "b_status": u.status.value,
        "b_attempts": u.attempts,
        "b_next": u.next_attempt_at,
        "b_tracking": _fit(u.tracking_id, m.tracking_id),
        "b_sender": u.sender,
        "b_provider": u.provider,
        "b_vendor_status": _fit(u.vendor_status, m.vendor_status),
        "b_code": _fit(u.error_code, m.error_code),
        "b_reason": u.error_reason,
        "b_sent": u.sent_at,
        "b_final": u.final_at,
        "b_doubt": u.reference_in_doubt,
        "b_reference": u.reference,
        "b_now": now,
    }


def log_attempts(session: Session, attempts: Sequence[AttemptRecord]) -> None:
    """One `send_attempts` row per vendor call, with what the vendor said."""
    a = send_attempts.c
    rows = [
        asdict(r)
        | {"code": _fit(r.code, a.code), "tracking_id": _fit(r.tracking_id, a.tracking_id)}
        for r in attempts
    ]
    if rows:
        session.execute(insert(send_attempts), rows)


def write_results(
    session: Session,
    results: Sequence[SendResult],
    now: datetime,
    *,
    finals: list[Final] | None = None,
) -> None:
    """A batch's results, by the worker that holds their claims: two
    statements, then (last, so that as little as possible runs between it
    and the commit) any delivery report that came first; the messages those
    reports settle are added to `finals` (for the vendors' delivery figures,
    counted after the commit)."""
    apply_updates(session, [r.update for r in results], now)
    log_attempts(session, [r.attempt for r in results if r.attempt is not None])
    apply_kept(session, _tracking_ids(results), now, finals=finals)


def _tracking_ids(results: Sequence[SendResult]) -> set[str]:
    return {r.update.tracking_id for r in results if r.update.tracking_id}


def write_results_once(
    session: Session,
    results: Sequence[SendResult],
    now: datetime,
    *,
    finals: list[Final] | None = None,
) -> set[str]:
    """Results kept elsewhere while their worker could not write them (a
    database outage, a killed worker), written by whoever finds them.

    Row by row, so that only the results whose claim still holds are written,
    attempt records included: a copy written twice, or after the row moved
    on, changes nothing. A result the database refuses (a value no column
    can hold) is replaced, in a savepoint of its own, by `unknown` saying so:
    the vendor may have taken the message, so it must not be sent again
    blindly, and it cannot hold up the others. Returns the claims written
    ("<id>:<attempts>").
    """
    written: set[str] = set()
    for result in results:
        try:
            with session.begin_nested():
                if _write_one(session, result, now):
                    written.add(result.claim)
        except REFUSED as exc:
            log.error("could not record the result of claim %s: %s", result.claim, exc.orig)
            if _write_one(session, _unrecordable(result, type(exc).__name__, now), now):
                written.add(result.claim)
    apply_kept(
        session, _tracking_ids([r for r in results if r.claim in written]), now, finals=finals
    )
    return written


def _write_one(session: Session, result: SendResult, now: datetime) -> bool:
    params = _persist_params(result.update, now)
    matched = session.execute(_PERSIST, params)
    if not getattr(matched, "rowcount", 0):
        if params["b_tracking"]:  # a report may have settled it first
            session.execute(_ADD_TRACKING, _tracking_params(params))
        return False
    log_attempts(session, [result.attempt] if result.attempt else [])
    return True


def _unrecordable(result: SendResult, why: str, now: datetime) -> SendResult:
    u = result.update
    return SendResult(
        RowUpdate(
            u.id,
            u.claim,
            MessageStatus.UNKNOWN,
            u.attempts,
            error_code="unrecordable",
            error_reason=f"the vendor's answer could not be recorded ({why})",
            sent_at=u.sent_at or now,
            reference_in_doubt=True,
        )
    )


@dataclass(frozen=True, slots=True)
class Stuck:
    """A row left in `sending` past the deadline: its worker is presumed dead."""

    id: int
    provider: str
    attempts: int
    claim_token: str

    @property
    def claim(self) -> str:
        return claim_key(self.id, self.claim_token)


def stuck_rows(session: Session, now: datetime, deadline_seconds: float, limit: int) -> list[Stuck]:
    """Rows a worker claimed and never finished (killed, or it lost the
    database and gave up), locked until this transaction ends."""
    m = messages.c
    rows = session.execute(
        select(m.id, m.provider, m.attempts, m.claim_token)
        .where(
            m.status == MessageStatus.SENDING,
            m.claimed_at < now - timedelta(seconds=deadline_seconds),
        )
        .order_by(m.claimed_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [Stuck(*row) for row in rows]


class Reclaim(StrEnum):
    """What becomes of a stuck row whose answer nobody kept."""

    RESEND = "resend"  # back to queued: sent again
    ASK = "ask"  # unknown: the vendor is asked first (reports/reconcile.py)
    GIVE_UP = "give_up"  # unknown: its worker died on every attempt


def reclaim(
    session: Session,
    rows: Sequence[Stuck],
    now: datetime,
    *,
    ask_first: Collection[str],
    max_attempts: Callable[[str], int],
) -> Counter[tuple[str, Reclaim]]:
    """Hand stuck rows on: resend them, or have the vendor asked first.

    Its worker may have sent a row before dying, so a vendor that can list
    what it took (`ask_first`) is asked before the row is sent again. A row
    that has used its vendor's `max_attempts(provider)` becomes `unknown`
    for good, so a message that kills its worker every time cannot loop.
    The attempt stays counted either way, and the reference is in doubt from
    now on (the worker may have sent it: Cue's -7 then means "ours").
    """
    m = messages.c
    decided: dict[Reclaim, list[int]] = {r: [] for r in Reclaim}
    counts: Counter[tuple[str, Reclaim]] = Counter()
    for row in rows:
        if row.attempts >= max_attempts(row.provider):
            action = Reclaim.GIVE_UP
        elif row.provider in ask_first:
            action = Reclaim.ASK
        else:
            action = Reclaim.RESEND
        decided[action].append(row.id)
        counts[row.provider, action] += 1
    worker_lost = {"status": MessageStatus.UNKNOWN, "error_code": "worker_lost", "sent_at": now}
    values: dict[Reclaim, dict[str, object]] = {
        Reclaim.RESEND: {
            "status": MessageStatus.QUEUED,
            "next_attempt_at": now,
            "enqueued_at": None,
        },
        # sent_at: the end of the window in which the vendor is searched.
        Reclaim.ASK: worker_lost
        | {
            "error_reason": "its worker stopped before recording the vendor's answer; the "
            "vendor is asked whether it took the message before it is sent again"
        },
        Reclaim.GIVE_UP: worker_lost
        | {
            "error_reason": "its worker stopped before recording the vendor's answer, "
            "and it has used all its attempts"
        },
    }
    for action, ids in decided.items():
        for chunk in chunked(ids):
            session.execute(
                update(messages)
                .where(m.id.in_(chunk), m.status == MessageStatus.SENDING)
                .values(**values[action], reference_in_doubt=True, updated_at=now)
            )
    return counts


def settle_unconfirmed(session: Session, now: datetime, deadline_seconds: float) -> int:
    """Fail `unknown` rows nothing confirmed within the deadline, saying why."""
    m = messages.c
    result = session.execute(
        update(messages)
        .where(
            m.status == MessageStatus.UNKNOWN,
            m.sent_at < now - timedelta(seconds=deadline_seconds),
        )
        .values(
            status=MessageStatus.FAILED,
            error_code="unconfirmed",
            error_reason=f"the send may have reached the vendor, but no report or status "
            f"query confirmed it within {deadline_seconds:.0f}s",
            final_at=now,
            updated_at=now,
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def take_due(
    session: Session, now: datetime, requeue_after_seconds: float, limit: int
) -> list[tuple[int, str, int]]:
    """Queued rows that need their id put on the broker, marked as enqueued.

    That is: never enqueued, waiting for a retry that is now due, or enqueued
    so long ago that the broker message must have been lost (a Redis restart).
    """
    m = messages.c
    rows = session.execute(
        select(m.id, m.provider, m.priority)
        .where(
            m.status == MessageStatus.QUEUED,
            m.next_attempt_at <= now,
            or_(
                m.enqueued_at.is_(None),
                m.enqueued_at < m.next_attempt_at,
                m.enqueued_at < now - timedelta(seconds=requeue_after_seconds),
            ),
        )
        .order_by(m.priority.desc(), m.next_attempt_at)
        .limit(limit)
        # Overlapping sweeps take different rows (PostgreSQL; SQLite serializes).
        .with_for_update(skip_locked=True)
    ).all()
    for chunk in chunked([row.id for row in rows]):
        session.execute(update(messages).where(m.id.in_(chunk)).values(enqueued_at=now))
    return [(row.id, row.provider, row.priority) for row in rows]


def status_counts(session: Session) -> dict[tuple[str, str], int]:
    """Messages by (provider, status): the demo's and the operator's summary."""
    m = messages.c
    stmt = select(m.provider, m.status, func.count()).group_by(m.provider, m.status)
    return {(p, s): n for p, s, n in session.execute(stmt)}
