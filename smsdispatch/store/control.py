"""What an operator does to message rows: cancel one not yet sent, and let
go the rows held for a vendor's pause when the vendor is resumed.

Cancelling is one conditional UPDATE: a worker claims a row with another
(store/outbox.py `claim`, `status = 'queued'`), so whichever commits first
wins and the other changes nothing. A cancelled row is final; a worker that
later takes its id off the broker claims nothing.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from smsdispatch.store.models import messages
from smsdispatch.vocabulary.status import MessageStatus

# Statuses in which no vendor has been called for the row's current send:
# held for its campaign's dispatcher, or waiting for a worker.
CANCELLABLE = frozenset({MessageStatus.HELD, MessageStatus.QUEUED})
CANCELLED_CODE = "cancelled"


class Cancel(StrEnum):
    """What became of a request to cancel one message."""

    CANCELLED = "cancelled"  # it was not sent and never will be
    NOT_FOUND = "not_found"  # no such message
    TOO_LATE = "too_late"  # a worker has it, or it was sent or settled


def cancel_unsent(
    session: Session, message_id: int, now: datetime, reason: str
) -> tuple[Cancel, str | None]:
    """Cancel the message if no send of it may have reached a vendor; what
    happened and the message's status now (None for no such message).

    A `queued` row put back after an attempt that may have gone out unanswered
    (`reference_in_doubt`) may be at the vendor already: it is not cancelled,
    since the vendor could still deliver it.
    """
    m = messages.c
    done = session.execute(
        update(messages)
        .where(
            m.id == message_id,
            m.status.in_([s.value for s in CANCELLABLE]),
            m.reference_in_doubt.is_(False),
        )
        .values(
            status=MessageStatus.CANCELLED,
            error_code=CANCELLED_CODE,
            error_reason=reason,
            final_at=now,
            updated_at=now,
        )
        .returning(m.id)
    ).first()
    if done is not None:
        return Cancel.CANCELLED, MessageStatus.CANCELLED.value
    current = session.execute(select(m.status).where(m.id == message_id)).scalar_one_or_none()
    return (Cancel.NOT_FOUND, None) if current is None else (Cancel.TOO_LATE, current)


def too_late(message_id: int, current: str | None) -> str:
    """Why a message could not be cancelled, for the API and the CLI alike."""
    if current == MessageStatus.QUEUED:
        why = "an earlier attempt may have reached its vendor"
    elif current == MessageStatus.CANCELLED:
        why = "it was cancelled already"
    elif current == MessageStatus.SENDING:
        why = "a worker is sending it"
    else:
        why = f"it is {current}: it was sent or settled"
    return f"message {message_id} not cancelled: {why}"


def release_held(
    session: Session, provider: str, held_code: str, since: datetime | None, now: datetime
) -> int:
    """Make the vendor's rows that wait for its pause due now; how many.

    Those are the rows a worker put back with `held_code` while the vendor
    was paused, and (from `since`, when the pause began) the rows whose own
    answer paused it: an account error holds its batch for the pause's
    length under the vendor's code. A retry of that vendor written in the
    same span (a batch in flight when the pause began) goes early too: it
    waited for the pause as much as for its back-off.
    """
    m = messages.c
    waiting = [m.error_code == held_code]
    if since is not None:
        waiting.append(m.updated_at >= since)
    result = session.execute(
        update(messages)
        .where(
            m.provider == provider,
            m.status == MessageStatus.QUEUED,
            m.next_attempt_at > now,
            or_(*waiting),
        )
        .values(next_attempt_at=now, updated_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)
