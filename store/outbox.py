"""The outbox queries: claim, persist, and sweep, each one statement per batch.

A row is claimed by moving it from `queued` to `sending` and adding one to
`attempts`; the new `attempts` value is the claim. Persisting checks the
claim, so a worker that was presumed dead and whose rows were handed to
another cannot overwrite the newer attempt's result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session

from providers.message import Encoding, OutboundMessage
from providers.outcomes import Outcome, clip_raw
from sending.transitions import RowUpdate
from store.models import messages, send_attempts
from store.status import MessageStatus


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
    campaign_id: int | None = None
    params: list[str] | None = None

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
            attempt=self.attempts,
        )


# Hosts' clocks differ by a little: a row made due by the sweeper's clock must
# not look early to a worker whose clock is a few milliseconds behind.
CLOCK_SKEW = timedelta(seconds=2)


def claim(session: Session, ids: Sequence[int], now: datetime) -> list[Claimed]:
    """Move due `queued` rows among `ids` to `sending`; return what was claimed.

    Rows another worker holds, rows already settled and rows not yet due are
    skipped: a redelivered or duplicated Celery message claims nothing.
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
            status=MessageStatus.SENDING, attempts=m.attempts + 1, claimed_at=now, updated_at=now
        )
        .returning(
            m.id,
            m.reference,
            m.provider,
            m.sender,
            m.recipient,
            m.text,
            m.encoding,
            m.segments,
            m.attempts,
            m.campaign_id,
            m.params,
        )
    )
    return [Claimed(*row) for row in session.execute(stmt)]


_PERSIST = (
    update(messages)
    .where(
        messages.c.id == bindparam("b_id"),
        messages.c.status == MessageStatus.SENDING,
        messages.c.attempts == bindparam("b_claim"),
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
        vendor_status=bindparam("b_vendor_status"),
        error_code=bindparam("b_code"),
        error_reason=bindparam("b_reason"),
        sent_at=func.coalesce(
            bindparam("b_sent", type_=messages.c.sent_at.type), messages.c.sent_at
        ),
        final_at=bindparam("b_final", type_=messages.c.final_at.type),
        updated_at=bindparam("b_now", type_=messages.c.updated_at.type),
    )
)


def apply_updates(session: Session, updates: Sequence[RowUpdate], now: datetime) -> None:
    """Write every row's new state in one executemany statement."""
    if not updates:
        return
    params = [
        {
            "b_id": u.id,
            "b_claim": u.claimed_attempts,
            "b_status": u.status.value,
            "b_attempts": u.attempts,
            "b_next": u.next_attempt_at,
            "b_tracking": u.tracking_id,
            "b_sender": u.sender,
            "b_vendor_status": u.vendor_status,
            "b_code": u.error_code,
            "b_reason": u.error_reason,
            "b_sent": u.sent_at,
            "b_final": u.final_at,
            "b_now": now,
        }
        for u in updates
    ]
    session.execute(_PERSIST, params)


def log_attempts(session: Session, calls: Sequence[tuple[Claimed, Outcome]], now: datetime) -> None:
    """One `send_attempts` row per vendor call, with what the vendor said."""
    if not calls:
        return
    session.execute(
        insert(send_attempts),
        [
            {
                "message_id": c.id,
                "attempt": c.attempts,
                "outcome": o.kind.value,
                "code": o.code,
                "reason": o.reason,
                "tracking_id": o.tracking_id,
                "raw": clip_raw(o.raw),
                "at": now,
            }
            for c, o in calls
        ],
    )


def reclaim_stuck(
    session: Session, now: datetime, deadline_seconds: float, max_attempts: Mapping[str, int]
) -> int:
    """Rows a worker claimed and never finished (it was killed): back to queued.

    The attempt stays counted, and a row that has used its vendor's
    `max_attempts` this way becomes `unknown` instead (its worker may have
    sent it before dying), so a message that kills its worker every time
    cannot loop forever.
    """
    m = messages.c
    stuck = (
        m.status == MessageStatus.SENDING,
        m.claimed_at < now - timedelta(seconds=deadline_seconds),
    )
    for provider, limit in max_attempts.items():
        session.execute(
            update(messages)
            .where(*stuck, m.provider == provider, m.attempts >= limit)
            .values(
                status=MessageStatus.UNKNOWN,
                error_code="worker_lost",
                error_reason=f"its worker stopped during each of {limit} attempts",
                sent_at=now,
                updated_at=now,
            )
        )
    result = session.execute(
        update(messages)
        .where(*stuck)
        .values(status=MessageStatus.QUEUED, next_attempt_at=now, enqueued_at=None, updated_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


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
    ids = [row.id for row in rows]
    for start in range(0, len(ids), 1000):
        session.execute(
            update(messages).where(m.id.in_(ids[start : start + 1000])).values(enqueued_at=now)
        )
    return [(row.id, row.provider, row.priority) for row in rows]


def status_counts(session: Session) -> dict[tuple[str, str], int]:
    """Messages by (provider, status): the demo's and the operator's summary."""
    m = messages.c
    stmt = select(m.provider, m.status, func.count()).group_by(m.provider, m.status)
    return {(p, s): n for p, s, n in session.execute(stmt)}
