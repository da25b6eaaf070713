"""Single messages: storing those the producer accepts, and reading one back.

A message is stored `queued` and marked enqueued before anything reaches the
broker: once its id is returned the row exists, and the sweeper enqueues it
again if the broker loses it or never got it. Campaign messages are stored
by store/campaign_messages.py; sends and reports move rows in
store/outbox.py and store/reports.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from smsdispatch.store.bulk import chunked
from smsdispatch.store.models import messages
from smsdispatch.vocabulary.status import MessageStatus

# What `message_status_row` answers with, the HTTP API's view of a message.
STATUS_COLUMNS = (
    "id",
    "reference",
    "provider",
    "route",
    "status",
    "attempts",
    "tracking_id",
    "vendor_status",
    "error_code",
    "error_reason",
    "client_reference",
    "created_at",
    "sent_at",
    "final_at",
)


def insert_queued(session: Session, batch: Sequence[Mapping[str, Any]], now: datetime) -> list[int]:
    """Store each message of `batch` (its own fields) `queued`; their ids, in batch order."""
    if not batch:
        return []
    rows = [
        {
            **fields,
            "status": MessageStatus.QUEUED.value,
            "attempts": 0,
            "next_attempt_at": now,
            "enqueued_at": now,
            "created_at": now,
            "updated_at": now,
        }
        for fields in batch
    ]
    stmt = insert(messages).returning(messages.c.id, sort_by_parameter_order=True)
    return [row.id for row in session.execute(stmt, rows)]


def ids_by_idempotency_key(session: Session, keys: Sequence[str]) -> dict[str, int]:
    """The stored messages' ids for those of `keys` already used."""
    m = messages.c
    found: dict[str, int] = {}
    for chunk in chunked(keys):
        rows = session.execute(select(m.idempotency_key, m.id).where(m.idempotency_key.in_(chunk)))
        found.update({key: mid for key, mid in rows})
    return found


def message_status_row(session: Session, message_id: int) -> dict[str, Any] | None:
    """One message's status, vendor ids and timestamps; None for no such message."""
    columns = [messages.c[name] for name in STATUS_COLUMNS]
    row = session.execute(select(*columns).where(messages.c.id == message_id)).one_or_none()
    return None if row is None else row._asdict()
