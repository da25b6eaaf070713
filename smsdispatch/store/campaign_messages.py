"""Every write to a campaign's messages: storing them, releasing, taking back, finishing.

A campaign's messages are stored `held`: the dispatcher, not the importer,
decides when they go to the broker. Releasing is `held -> queued` in id
order, conditioned on the campaign still running in the same statement.
A worker claims only `queued` rows, so one taken back (`queued -> held`) or
finished here is never sent, and one already claimed is sent exactly once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, exists, select, update
from sqlalchemy.orm import Session

from smsdispatch.store.bulk import insert_many
from smsdispatch.store.campaigns import lock_campaign
from smsdispatch.store.models import campaigns, messages
from smsdispatch.vocabulary.status import CampaignStatus, MessageStatus

# What each stored recipient row gives, in this order (`params` as JSON text).
RECIPIENT_COLUMNS = ("recipient", "text", "encoding", "segments", "params")
RecipientRow = tuple[str, str, str, int, str | None]
# A routed campaign's rows carry their own vendor, sender and route, after those.
ROUTED_COLUMNS = (*RECIPIENT_COLUMNS, "provider", "sender", "route")
RoutedRow = tuple[str, str, str, int, str | None, str, str, str]


@dataclass(frozen=True, slots=True)
class CampaignTarget:
    """What every stored row of the campaign shares (a routed one: no vendor, no sender)."""

    id: int
    provider: str | None
    sender: str | None
    # The campaign's status callback, copied onto each message (migration 0015).
    status_callback: str | None = None
    callback_key_id: int | None = None

    @property
    def routed(self) -> bool:
        return self.provider is None


def store_held(
    session: Session,
    target: CampaignTarget,
    rows: Sequence[RecipientRow] | Sequence[RoutedRow],
    now: datetime,
) -> None:
    """Store the campaign's new messages, `held` (by COPY on PostgreSQL: store/bulk.py).

    A routed campaign's rows are `RoutedRow`s, the others' `RecipientRow`s.
    """
    columns = ROUTED_COLUMNS if target.routed else RECIPIENT_COLUMNS
    insert_many(session, messages, _shared(target, now), columns, rows, encoded=("params",))


def _shared(target: CampaignTarget, now: datetime) -> dict[str, object]:
    """What every stored row of the campaign has in common."""
    vendor = {} if target.routed else {"provider": target.provider, "sender": target.sender}
    return {
        **vendor,
        "status": MessageStatus.HELD.value,
        "attempts": 0,
        "priority": 0,
        "campaign_id": target.id,
        "status_callback": target.status_callback,
        "callback_key_id": target.callback_key_id if target.status_callback else None,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }


def release(
    session: Session, campaign_id: int, limit: int, now: datetime, provider: str | None = None
) -> list[int]:
    """Up to `limit` held messages -> `queued`, marked enqueued; their ids, in order.

    `provider`: only that vendor's messages (a routed campaign's are released
    per vendor, at each vendor's pace). Nothing unless the campaign is
    running. Its row is locked first: a pause or cancel waits for this
    release to commit (and then takes it back), or this release sees it and
    stops.
    """
    m = messages.c
    c = campaigns.c
    if lock_campaign(session, campaign_id) != CampaignStatus.RUNNING:
        return []
    mine = [m.campaign_id == campaign_id, m.status == MessageStatus.HELD]
    if provider is not None:
        mine.append(m.provider == provider)
    candidates = select(m.id).where(*mine).order_by(m.id).limit(limit).scalar_subquery()
    still_running = exists().where(and_(c.id == campaign_id, c.status == CampaignStatus.RUNNING))
    rows = session.execute(
        update(messages)
        .where(m.id.in_(candidates), m.status == MessageStatus.HELD, still_running)
        .values(
            status=MessageStatus.QUEUED,
            next_attempt_at=now,
            enqueued_at=now,
            updated_at=now,
        )
        .returning(m.id)
    )
    return sorted(int(i) for (i,) in rows)


def take_back(session: Session, campaign_id: int, now: datetime) -> int:
    """Released but unclaimed messages back to `held` (their broker tasks claim nothing)."""
    m = messages.c
    result = session.execute(
        update(messages)
        .where(m.campaign_id == campaign_id, m.status == MessageStatus.QUEUED)
        .values(status=MessageStatus.HELD, enqueued_at=None, updated_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def finish_unsent(
    session: Session,
    campaign_id: int,
    now: datetime,
    status: MessageStatus,
    code: str,
    reason: str,
) -> int:
    """Give every message not yet claimed by a worker its final status."""
    m = messages.c
    result = session.execute(
        update(messages)
        .where(
            m.campaign_id == campaign_id,
            m.status.in_([MessageStatus.HELD, MessageStatus.QUEUED]),
        )
        .values(
            status=status,
            error_code=code,
            error_reason=reason,
            final_at=now,
            updated_at=now,
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
