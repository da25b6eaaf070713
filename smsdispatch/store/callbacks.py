"""The status callbacks' outbox: hand out, claim, record, list and replay.

Rows are written by the trigger on `messages` (migration 0015), never here:
so a status change and its callback commit together on every path. Here
they move `pending` -> `delivered` | `failed` (and back to `pending` on a
replay), like messages in store/outbox.py:

- `enqueue_due`: beat's sweep picks due rows (SKIP LOCKED on PostgreSQL, so
  two sweeps never hand out one row) and marks them enqueued; a message's
  callback waits while an earlier one of the same message is pending, so a
  receiver gets one message's changes in order.
- `claim`: a worker takes enqueued rows under a token and a lease (their
  `next_attempt_at` moves to the lease's end), so a redelivered task claims
  nothing and a dead worker's rows come due again after the lease.
- `record`: the POST's verdict, written only under the claim's token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import CursorResult, and_, bindparam, func, select, update
from sqlalchemy.orm import Session, aliased

from smsdispatch.store.bulk import chunked
from smsdispatch.store.models import api_keys, messages, status_callbacks

# Rows found due by one process are not early for another (store/outbox.py).
CLOCK_SKEW = timedelta(seconds=2)


class CallbackState(StrEnum):
    PENDING = "pending"  # due at next_attempt_at (or being posted, under a claim)
    DELIVERED = "delivered"  # the receiver answered 2xx
    FAILED = "failed"  # a 4xx, a refused URL, or retried for the whole period


@dataclass(frozen=True, slots=True)
class DueCallback:
    """One claimed callback: what its POST says and where it goes."""

    id: int  # also its sequence number
    message_id: int
    event: str
    status: str
    provider: str
    tracking_id: str | None
    error_code: str | None
    error_reason: str | None
    changed_at: datetime
    url: str
    key_id: int | None
    attempts: int
    claim_token: str
    retry_from: datetime
    client_reference: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to write after a POST: `state` pending means try again at `retry_at`."""

    id: int
    token: str
    state: CallbackState
    at: datetime
    response_status: int | None = None
    error: str | None = None
    retry_at: datetime | None = None
    counted: bool = True  # False: never posted (the host was busy): not an attempt


def enqueue_due(session: Session, now: datetime, stale: timedelta, limit: int) -> list[int]:
    """Ids of due callbacks not on the broker (or put there longer than `stale`
    ago), marked enqueued now; oldest due first."""
    c = status_callbacks.c
    earlier = aliased(status_callbacks)
    due = (
        select(c.id)
        .where(
            c.state == CallbackState.PENDING,
            c.next_attempt_at <= now,
            (c.enqueued_at.is_(None)) | (c.enqueued_at < now - stale),
            ~select(earlier.c.id)
            .where(
                earlier.c.message_id == c.message_id,
                earlier.c.state == CallbackState.PENDING,
                earlier.c.id < c.id,
            )
            .exists(),
        )
        .order_by(c.next_attempt_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True, of=status_callbacks)
    ids = list(session.scalars(due))
    for chunk in chunked(ids):
        session.execute(update(status_callbacks).where(c.id.in_(chunk)).values(enqueued_at=now))
    return ids


_DUE = (
    status_callbacks.c.id,
    status_callbacks.c.message_id,
    status_callbacks.c.event,
    status_callbacks.c.status,
    status_callbacks.c.provider,
    status_callbacks.c.tracking_id,
    status_callbacks.c.error_code,
    status_callbacks.c.error_reason,
    status_callbacks.c.changed_at,
    status_callbacks.c.url,
    status_callbacks.c.key_id,
    status_callbacks.c.attempts,
    status_callbacks.c.claim_token,
    func.coalesce(status_callbacks.c.replayed_at, status_callbacks.c.changed_at),
)


def claim(
    session: Session, ids: Sequence[int], now: datetime, token: str, lease: timedelta
) -> list[DueCallback]:
    """Take the due pending rows among `ids` under `token` until `now + lease`;
    each with its message's client reference and creation time."""
    if not ids:
        return []
    c = status_callbacks.c
    stmt = (
        update(status_callbacks)
        .where(
            c.id.in_(ids),
            c.state == CallbackState.PENDING,
            c.next_attempt_at <= now + CLOCK_SKEW,
        )
        .values(claim_token=token, attempts=c.attempts + 1, next_attempt_at=now + lease)
        .returning(*_DUE)
    )
    claimed = [DueCallback(*row) for row in session.execute(stmt)]
    if not claimed:
        return []
    m = messages.c
    rows = session.execute(
        select(m.id, m.client_reference, m.created_at).where(
            m.id.in_({d.message_id for d in claimed})
        )
    )
    extra = {mid: (ref, created) for mid, ref, created in rows}
    with_message = (
        replace(d, client_reference=ref, created_at=created)
        for d in claimed
        for ref, created in [extra.get(d.message_id, (None, None))]
    )
    return sorted(with_message, key=lambda d: d.id)


def secrets_of(session: Session, key_ids: Sequence[int]) -> dict[int, str]:
    """The signing secrets of these API keys (those that have one)."""
    k = api_keys.c
    rows = session.execute(
        select(k.id, k.callback_secret).where(
            k.id.in_(set(key_ids)), k.callback_secret.is_not(None)
        )
    )
    return {key_id: secret for key_id, secret in rows}


def record(session: Session, verdicts: Sequence[Verdict]) -> int:
    """Write each verdict, under its claim's token only; how many rows it moved."""
    if not verdicts:
        return 0
    c = status_callbacks.c
    stmt = (
        update(status_callbacks)
        .where(c.id == bindparam("b_id"), c.claim_token == bindparam("b_token"))
        .values(
            state=bindparam("b_state"),
            next_attempt_at=bindparam("b_next"),
            attempts=c.attempts - bindparam("b_uncounted"),
            response_status=bindparam("b_response"),
            last_error=bindparam("b_error"),
            settled_at=bindparam("b_settled"),
            enqueued_at=None,
            claim_token=None,
        )
    )
    rows: list[dict[str, Any]] = [
        {
            "b_id": v.id,
            "b_token": v.token,
            "b_state": v.state.value,
            "b_next": v.retry_at or v.at,
            "b_uncounted": 0 if v.counted else 1,
            "b_response": v.response_status,
            "b_error": v.error,
            "b_settled": None if v.state is CallbackState.PENDING else v.at,
        }
        for v in verdicts
    ]
    result = cast(CursorResult[Any], session.execute(stmt, rows))
    return int(result.rowcount or 0)


@dataclass(frozen=True, slots=True)
class CallbackRow:
    """A callback as the API lists it: never a secret."""

    id: int
    message_id: int
    event: str
    status: str
    provider: str
    url: str
    state: str
    attempts: int
    changed_at: datetime
    next_attempt_at: datetime
    settled_at: datetime | None
    response_status: int | None
    last_error: str | None


_LISTED = [status_callbacks.c[f] for f in CallbackRow.__dataclass_fields__]


def list_callbacks(
    session: Session,
    state: str | None,
    *,
    limit: int = 100,
    after_id: int = 0,
    key_id: int | None = None,
) -> list[CallbackRow]:
    """Callbacks in id order after `after_id`, of one state if given."""
    c = status_callbacks.c
    stmt = select(*_LISTED).where(c.id > after_id).order_by(c.id).limit(limit)
    if state is not None:
        stmt = stmt.where(c.state == state)
    if key_id is not None:
        stmt = stmt.where(c.key_id == key_id)
    return [CallbackRow(*row) for row in session.execute(stmt)]


def replay(
    session: Session,
    ids: Sequence[int] | None,
    now: datetime,
    limit: int = 10_000,
    *,
    key_id: int | None = None,
) -> list[int]:
    """Put failed callbacks (these, or the first `limit` of them; only key
    `key_id`'s if given) back to pending, due now, with a fresh retry
    period; the ids replayed."""
    c = status_callbacks.c
    mine = [c.state == CallbackState.FAILED]
    if key_id is not None:
        mine.append(c.key_id == key_id)
    if ids is not None:
        chosen = and_(*mine, c.id.in_(ids))
    else:
        chosen = c.id.in_(select(c.id).where(*mine).order_by(c.id).limit(limit))
    stmt = (
        update(status_callbacks)
        .where(chosen)
        .values(
            state=CallbackState.PENDING,
            attempts=0,
            next_attempt_at=now,
            enqueued_at=None,
            claim_token=None,
            settled_at=None,
            replayed_at=now,
        )
        .returning(c.id)
    )
    return sorted(session.scalars(stmt))


def pending_count(session: Session) -> int:
    c = status_callbacks.c
    return int(
        session.scalar(
            select(func.count())
            .select_from(status_callbacks)
            .where(c.state == CallbackState.PENDING)
        )
        or 0
    )
