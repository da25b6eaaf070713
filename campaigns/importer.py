"""Importing a recipient list into a campaign, in chunks, at a flat memory cost.

Each chunk is one transaction: the campaign's rows and its counters move
together, and an import that dies half-way can be run again (numbers already
in the campaign are skipped as duplicates). Rows are stored `held`: the
dispatcher, not the importer, decides when they go to the broker.

Duplicates are found with a set of the campaign's numbers held as integers
(about 60 bytes each: 60 MB for a million), the one thing that grows with
the list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from campaigns.preparation import Prepared, RowPreparer, prepare_all
from campaigns.recipients import BadRow, Row
from store.bulk import insert_many
from store.db import Database, utcnow
from store.models import campaigns, messages
from store.optouts import opted_out
from store.status import CampaignStatus, MessageStatus

IMPORTABLE = (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED)
KEEP_REJECTIONS = 100  # how many rejections the result keeps for display


class ImportRefused(ValueError):
    """The campaign cannot take recipients now."""


@dataclass
class ImportResult:
    imported: int = 0
    rejected: int = 0  # all rejections, duplicates and opt-outs included
    duplicates: int = 0
    opted_out: int = 0
    first_rejections: list[BadRow] = field(default_factory=list)
    # Rejections already added to the campaign's counter.
    recorded: int = field(default=0, repr=False)

    def reject(self, bad: BadRow) -> None:
        self.rejected += 1
        if len(self.first_rejections) < KEEP_REJECTIONS:
            self.first_rejections.append(bad)


@dataclass(frozen=True, slots=True)
class CampaignTarget:
    """What every stored row of the campaign shares."""

    id: int
    provider: str
    sender: str


def import_rows(
    db: Database,
    target: CampaignTarget,
    rows: Iterable[Row | BadRow],
    preparer: RowPreparer,
    *,
    chunk_size: int = 5000,
    processes: int | None = None,
    on_reject: Callable[[BadRow], None] | None = None,
    on_progress: Callable[[ImportResult], None] | None = None,
) -> ImportResult:
    """Store every good row; report every bad one, with its line, to `on_reject`."""
    result = ImportResult()

    def rejected(bad: BadRow) -> None:
        result.reject(bad)
        if on_reject is not None:
            on_reject(bad)

    seen = _numbers_in(db, target.id)
    # One connection for the whole import, one transaction per chunk: a new
    # SQLite connection per chunk costs a WAL checkpoint on each close.
    with db.session() as session:
        _import(session, target, rows, preparer, chunk_size, processes, seen, result, rejected,
                on_progress)  # fmt: skip
    return result


def _import(
    session: Session,
    target: CampaignTarget,
    rows: Iterable[Row | BadRow],
    preparer: RowPreparer,
    chunk_size: int,
    processes: int | None,
    seen: set[int],
    result: ImportResult,
    rejected: Callable[[BadRow], None],
    on_progress: Callable[[ImportResult], None] | None,
) -> None:
    chunk: list[Prepared] = []
    for item in prepare_all(preparer, rows, processes):
        if isinstance(item, BadRow):
            rejected(item)
            continue
        key = int(item.recipient[1:])
        if key in seen:
            result.duplicates += 1
            rejected(BadRow(item.line, f"duplicate: {item.recipient} is already in the list"))
            continue
        seen.add(key)
        chunk.append(item)
        if len(chunk) >= chunk_size:
            _store(session, target, chunk, result, rejected)
            chunk = []
            if on_progress is not None:
                on_progress(result)
    _store(session, target, chunk, result, rejected)
    if on_progress is not None:
        on_progress(result)


def _numbers_in(db: Database, campaign_id: int) -> set[int]:
    """The campaign's numbers already stored (a second import of the same list)."""
    with db.session() as session:
        rows = session.execute(
            select(messages.c.recipient)
            .where(messages.c.campaign_id == campaign_id)
            .execution_options(yield_per=10_000)
        )
        return {int(r[1:]) for (r,) in rows}


def _store(
    session: Session,
    target: CampaignTarget,
    chunk: list[Prepared],
    result: ImportResult,
    rejected: Callable[[BadRow], None],
) -> None:
    now = utcnow()
    with session.begin():
        _lock_importable(session, target.id)
        blocked = opted_out(session, (p.recipient for p in chunk)) if chunk else set()
        keep = [p for p in chunk if p.recipient not in blocked]
        for p in chunk:
            if p.recipient in blocked:
                result.opted_out += 1
                rejected(BadRow(p.line, f"{p.recipient} is on the opt-out list"))
        insert_many(
            session,
            messages,
            _shared(target, now),
            ["recipient", "text", "encoding", "segments", "params"],
            [(p.recipient, p.text, p.encoding.value, p.segments, p.params_json) for p in keep],
            encoded=("params",),
        )
        result.imported += len(keep)
        session.execute(
            update(campaigns)
            .where(campaigns.c.id == target.id)
            .values(
                imported=campaigns.c.imported + len(keep),
                rejected=campaigns.c.rejected + (result.rejected - result.recorded),
                updated_at=now,
            )
        )
    result.recorded = result.rejected


def _lock_importable(session: Session, campaign_id: int) -> None:
    status = session.scalar(
        select(campaigns.c.status).where(campaigns.c.id == campaign_id).with_for_update()
    )
    if status is None:
        raise ImportRefused(f"campaign {campaign_id} does not exist")
    if status not in IMPORTABLE:
        raise ImportRefused(
            f"campaign {campaign_id} is {status}: recipients can be added while it is "
            f"{' or '.join(IMPORTABLE)}"
        )


def _shared(target: CampaignTarget, now: datetime) -> dict[str, object]:
    """What every stored row of the campaign has in common."""
    return {
        "provider": target.provider,
        "sender": target.sender,
        "status": MessageStatus.HELD.value,
        "attempts": 0,
        "priority": 0,
        "campaign_id": target.id,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }
