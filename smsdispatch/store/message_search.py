"""Finding stored messages by what an operator or a client knows of them.

Newest first, a page at a time by keyset (`id < the last id seen`), so a
page costs the same deep in a large table and rows written meanwhile neither
repeat nor shift a page. Recipients and texts are read only when asked for.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from smsdispatch.store.messages import STATUS_COLUMNS
from smsdispatch.store.models import messages

# Personal data: in an answer only when the caller asks for it by name.
PERSONAL_COLUMNS = ("recipient", "text")
SEARCH_COLUMNS = (*STATUS_COLUMNS, "campaign_id")


@dataclass(frozen=True, slots=True)
class MessageFilter:
    status: str | None = None
    provider: str | None = None
    campaign_id: int | None = None
    client_reference: str | None = None
    reference: str | None = None  # ours, as the vendor knows the message
    since: datetime | None = None  # submitted at or after
    until: datetime | None = None  # submitted before
    before_id: int | None = None  # the keyset: ids below the last one seen


def search_messages(
    session: Session, wanted: MessageFilter, limit: int, include: Collection[str] = ()
) -> list[dict[str, Any]]:
    """Up to `limit` messages matching every given filter, newest first;
    `include` adds any of PERSONAL_COLUMNS."""
    m = messages.c
    names = [*SEARCH_COLUMNS, *(c for c in PERSONAL_COLUMNS if c in include)]
    conditions = [
        column == value
        for column, value in (
            (m.status, wanted.status),
            (m.provider, wanted.provider),
            (m.campaign_id, wanted.campaign_id),
            (m.client_reference, wanted.client_reference),
            (m.reference, wanted.reference),
        )
        if value is not None
    ]
    if wanted.since is not None:
        conditions.append(m.created_at >= wanted.since)
    if wanted.until is not None:
        conditions.append(m.created_at < wanted.until)
    if wanted.before_id is not None:
        conditions.append(m.id < wanted.before_id)
    stmt = select(*(m[n] for n in names)).where(*conditions).order_by(m.id.desc()).limit(limit)
    return [row._asdict() for row in session.execute(stmt)]
