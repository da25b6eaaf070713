"""What one vendor call leaves to be written: a row's new state and the attempt's record.

They are values, not statements, so a worker can hold them while the database
is away, retry them, or leave them for the sweeper (sending/journal.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from store.status import MessageStatus


@dataclass(frozen=True, slots=True)
class RowUpdate:
    """The new values for one claimed row (the claim is id + attempts)."""

    id: int
    claimed_attempts: int
    status: MessageStatus
    attempts: int
    next_attempt_at: datetime | None = None  # None: leave as it is
    sender: str | None = None  # the sender chosen from a pool at send time
    tracking_id: str | None = None
    vendor_status: str | None = None
    error_code: str | None = None
    error_reason: str | None = None
    sent_at: datetime | None = None
    final_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One `send_attempts` row: what one vendor call answered for one message."""

    message_id: int
    attempt: int
    outcome: str  # providers.outcomes.OutcomeKind value
    code: str | None
    reason: str | None
    tracking_id: str | None
    raw: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class SendResult:
    """Everything one claimed row's turn leaves to write; `attempt` is None
    when no vendor was called (held for a pause, refused as invalid)."""

    update: RowUpdate
    attempt: AttemptRecord | None = None

    @property
    def claim(self) -> str:
        """Names the claim this result belongs to: "<message id>:<attempts>"."""
        return claim_key(self.update.id, self.update.claimed_attempts)


def claim_key(message_id: int, attempts: int) -> str:
    return f"{message_id}:{attempts}"
