"""The opt-out list: numbers that asked not to be sent to.

Checked where messages enter (the producer and the campaign importer, for a
clear early answer) and again by the worker just before sending, so a number
that opts out after its campaign was imported is still not sent to.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from smsdispatch.store.models import opt_outs

CHUNK = 1000  # bound parameters per IN list (SQLite allows a few thousand)


def opted_out(session: Session, recipients: Iterable[str]) -> set[str]:
    """Which of these E.164 numbers are on the list."""
    numbers = list(dict.fromkeys(recipients))
    found: set[str] = set()
    for start in range(0, len(numbers), CHUNK):
        chunk = numbers[start : start + CHUNK]
        found.update(
            session.scalars(select(opt_outs.c.recipient).where(opt_outs.c.recipient.in_(chunk)))
        )
    return found


def add(session: Session, recipients: Sequence[str], now: datetime, reason: str | None) -> int:
    """Put numbers on the list; return how many were not on it already."""
    fresh = sorted(set(recipients) - opted_out(session, recipients))
    if fresh:
        session.execute(
            insert(opt_outs),
            [{"recipient": r, "reason": reason, "created_at": now} for r in fresh],
        )
    return len(fresh)


def remove(session: Session, recipients: Sequence[str]) -> int:
    """Take numbers off the list; return how many were on it."""
    removed = 0
    for start in range(0, len(recipients), CHUNK):
        chunk = list(recipients[start : start + CHUNK])
        result = session.execute(delete(opt_outs).where(opt_outs.c.recipient.in_(chunk)))
        removed += int(getattr(result, "rowcount", 0) or 0)
    return removed


def count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(opt_outs)) or 0)
