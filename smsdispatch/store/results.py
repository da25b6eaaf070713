"""What one claimed row's turn leaves to be written: its new state and the attempt's record.

They are values, not statements, so a worker can keep them in Redis as the
vendor answers (sending/journal.py), hold them while the database is away,
or hand them to the sweeper; the JSON form is that copy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from smsdispatch.vocabulary.status import MessageStatus


@dataclass(frozen=True, slots=True)
class ClaimRef:
    """One claimed row, as what it says of its claim: which, whose, which try."""

    id: int
    token: str  # the claim's token: a result is written only under it
    attempts: int  # with this send counted

    @property
    def key(self) -> str:
        return claim_key(self.id, self.token)


@dataclass(frozen=True, slots=True)
class RowUpdate:
    """The new values for one claimed row; `claim` is the claim's token."""

    id: int
    claim: str
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
    # True: this send may have reached the vendor unanswered; None: leave it.
    reference_in_doubt: bool | None = None
    # A new reference, where the vendor will never take the old one again.
    reference: str | None = None
    # Another vendor of the message's route takes it (sending/failover.py).
    provider: str | None = None


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One `send_attempts` row: what one vendor call answered for one message."""

    message_id: int
    attempt: int
    outcome: str  # smsdispatch.vocabulary.outcomes.OutcomeKind value
    code: str | None
    reason: str | None
    tracking_id: str | None
    raw: str | None
    at: datetime
    # The vendor and sender this call went to (None in results journaled by
    # a version that did not record them).
    provider: str | None = None
    sender: str | None = None


@dataclass(frozen=True, slots=True)
class SendResult:
    """Everything one claimed row's turn leaves to write; `attempt` is None
    when no vendor was called (held for a pause, refused as invalid)."""

    update: RowUpdate
    attempt: AttemptRecord | None = None

    @property
    def claim(self) -> str:
        """Names the claim this result belongs to: "<message id>:<token>"."""
        return claim_key(self.update.id, self.update.claim)

    def to_json(self) -> str:
        update = _plain(self.update)
        attempt = _plain(self.attempt) if self.attempt is not None else None
        return json.dumps({"u": update, "a": attempt}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> SendResult:
        data = json.loads(text)
        update = _revive(RowUpdate, data["u"])
        update["status"] = MessageStatus(update["status"])
        attempt = data["a"]
        return cls(
            RowUpdate(**update),
            AttemptRecord(**_revive(AttemptRecord, attempt)) if attempt is not None else None,
        )


def claim_key(message_id: int, token: str) -> str:
    return f"{message_id}:{token}"


# Not dataclasses.asdict: it deep-copies, and this runs for every answer.
_FIELDS = {cls: tuple(f.name for f in fields(cls)) for cls in (RowUpdate, AttemptRecord)}
_TIMES = {
    cls: {f.name for f in fields(cls) if "datetime" in str(f.type)}
    for cls in (RowUpdate, AttemptRecord)
}


def _plain(value: RowUpdate | AttemptRecord) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in _FIELDS[type(value)]:
        item = getattr(value, name)
        if item is not None:
            out[name] = item.isoformat() if isinstance(item, datetime) else item
    return out


def _revive(cls: type[RowUpdate] | type[AttemptRecord], data: dict[str, Any]) -> dict[str, Any]:
    """The fields back (those left out were None), datetimes read back."""
    values: dict[str, Any] = {name: data.get(name) for name in _FIELDS[cls]}
    for name in _TIMES[cls]:
        if values[name] is not None:
            values[name] = datetime.fromisoformat(values[name])
    return values
