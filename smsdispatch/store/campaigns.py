"""Every write to the `campaigns` table: creation, status moves, counters.

A status move is one conditional UPDATE (`WHERE status IN (...)`): of two
callers moving the same campaign at once (two operators, an operator and
the dispatcher), one matches the row and the other matches nothing, and is
told so by the rowcount. The stored `counts` are a snapshot, refreshed by
the dispatcher and at each end; the live numbers are `count_by_status`.

The moves of a campaign's messages (release, take-back, finishing the
unsent) are in store/campaign_messages.py.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, insert, select, update
from sqlalchemy.orm import Session

from smsdispatch.store.models import campaigns, messages
from smsdispatch.vocabulary.status import UNSENT, CampaignStatus


def create_campaign(session: Session, values: Mapping[str, Any], now: datetime) -> int:
    """A new draft with `values` (its checked fields); its id."""
    row = {
        **values,
        "status": CampaignStatus.DRAFT.value,
        "imported": 0,
        "rejected": 0,
        "counts": {},
        "created_at": now,
        "updated_at": now,
    }
    return int(session.execute(insert(campaigns).returning(campaigns.c.id), row).scalar_one())


def move_campaign(
    session: Session,
    campaign_id: int,
    allowed: Collection[CampaignStatus],
    target: CampaignStatus,
    now: datetime,
    **values: Any,
) -> bool:
    """`allowed` -> `target` (with `values`); False when its status was not one of `allowed`."""
    c = campaigns.c
    result = session.execute(
        update(campaigns)
        .where(c.id == campaign_id, c.status.in_(allowed))
        .values(status=target.value, updated_at=now, **values)
    )
    return _rowcount(result) == 1


def campaign_status(session: Session, campaign_id: int) -> str | None:
    """Its status now, or None for no such campaign."""
    return session.scalar(select(campaigns.c.status).where(campaigns.c.id == campaign_id))


def lock_campaign(session: Session, campaign_id: int) -> str | None:
    """Its status, its row locked until the transaction ends (None: no such campaign).

    What writes a campaign's messages takes this first: a status move waits
    for that write to commit, or the write sees the move and stops.
    """
    c = campaigns.c
    return session.scalar(select(c.status).where(c.id == campaign_id).with_for_update())


def back_to_scheduled_if_early(session: Session, campaign_id: int, now: datetime) -> None:
    """A campaign resumed before its start time waits for it again (`scheduled`).

    Leaves `updated_at` as the resume set it, in the same transaction.
    """
    c = campaigns.c
    row = session.execute(select(c.start_at, c.started_at).where(c.id == campaign_id)).one()
    if row.started_at is None and row.start_at is not None and row.start_at > now:
        session.execute(
            update(campaigns)
            .where(c.id == campaign_id)
            .values(status=CampaignStatus.SCHEDULED.value)
        )


def start_due(session: Session, now: datetime) -> list[int]:
    """Scheduled campaigns whose start time has come move to `running`; their ids."""
    c = campaigns.c
    due = list(
        session.scalars(select(c.id).where(c.status == CampaignStatus.SCHEDULED, c.start_at <= now))
    )
    if due:
        session.execute(
            update(campaigns)
            .where(c.id.in_(due), c.status == CampaignStatus.SCHEDULED)
            .values(status=CampaignStatus.RUNNING, started_at=now, updated_at=now)
        )
    return due


def complete(session: Session, campaign_id: int, now: datetime) -> None:
    """`completed`, whatever it was (its end time passed: nothing is left to send)."""
    session.execute(
        update(campaigns)
        .where(campaigns.c.id == campaign_id)
        .values(status=CampaignStatus.COMPLETED, finished_at=now, updated_at=now)
    )


def complete_if_done(session: Session, campaign_id: int, now: datetime) -> bool:
    """A running campaign with no unsent message left is `completed`; True if this did it."""
    c = campaigns.c
    m = messages.c
    unfinished = session.scalar(
        select(exists().where(m.campaign_id == campaign_id, m.status.in_(UNSENT)))
    )
    if unfinished:
        return False
    result = session.execute(
        update(campaigns)
        .where(c.id == campaign_id, c.status == CampaignStatus.RUNNING)
        .values(status=CampaignStatus.COMPLETED, finished_at=now, updated_at=now)
    )
    return bool(_rowcount(result))


def count_by_status(session: Session, campaign_id: int) -> dict[str, int]:
    """Its messages by status, counted now (an index range scan)."""
    m = messages.c
    rows = session.execute(
        select(m.status, func.count()).where(m.campaign_id == campaign_id).group_by(m.status)
    )
    return {status: int(n) for status, n in rows}


def refresh_counts(session: Session, campaign_id: int, now: datetime) -> dict[str, int]:
    """Store `count_by_status` as the campaign's `counts`; return them."""
    counts = count_by_status(session, campaign_id)
    session.execute(
        update(campaigns).where(campaigns.c.id == campaign_id).values(counts=counts, updated_at=now)
    )
    return counts


def add_to_counters(
    session: Session, campaign_id: int, imported: int, rejected: int, now: datetime
) -> None:
    """Add an import chunk's rows to `imported` and `rejected`, in the chunk's transaction."""
    c = campaigns.c
    session.execute(
        update(campaigns)
        .where(c.id == campaign_id)
        .values(imported=c.imported + imported, rejected=c.rejected + rejected, updated_at=now)
    )


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
