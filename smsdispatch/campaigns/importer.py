"""Importing a recipient list into a campaign, in chunks, at a flat memory cost.

Each chunk is one transaction: the campaign's rows and its counters move
together, and an import that dies half-way can be run again (numbers already
in the campaign are skipped as duplicates). Rows are stored `held`: the
dispatcher, not the importer, decides when they go to the broker. A routed
campaign's rows are routed a chunk at a time, one routing snapshot per chunk
(campaigns/routing.py); a row no vendor of its route can carry is rejected.

Duplicates are found with the campaign's numbers held in a sorted int64
array (campaigns/numbers.py: 8 MB for a million), the one thing that grows
with the list. Rejections are reported a chunk at a time, in line order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from smsdispatch.campaigns.numbers import NumberSet
from smsdispatch.campaigns.preparation import Prepared, RowPreparer, prepare_all
from smsdispatch.campaigns.recipients import BadRow, Row
from smsdispatch.campaigns.routing import ChunkRouter, Routed
from smsdispatch.store.campaign_messages import CampaignTarget, RoutedRow, store_held
from smsdispatch.store.campaigns import add_to_counters, lock_campaign
from smsdispatch.store.clock import Clock
from smsdispatch.store.db import Database
from smsdispatch.store.models import messages
from smsdispatch.store.optouts import opted_out
from smsdispatch.vocabulary.errors import ConflictError
from smsdispatch.vocabulary.status import CampaignStatus

IMPORTABLE = (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED)
KEEP_REJECTIONS = 100  # how many rejections the result keeps for display


class ImportRefused(ConflictError, ValueError):
    """The campaign cannot take recipients now: a conflict with its status, not
    bad rows, so the caller is told the status rather than a field to fix.

    `status` is None when the campaign is gone by the time its rows are locked.
    """

    def __init__(self, campaign_id: int, status: CampaignStatus | None) -> None:
        if status is None:
            message = f"campaign {campaign_id} does not exist"
        else:
            message = (
                f"campaign {campaign_id} is {status}: recipients can be added while it is "
                f"{' or '.join(IMPORTABLE)}"
            )
        super().__init__(message)
        self.campaign_id = campaign_id
        self.status = status


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
    routing: ChunkRouter | None = None,
) -> ImportResult:
    """Store every good row; report every bad one, with its line, to `on_reject`.

    `routing` is required for a routed campaign (`target.provider` None)."""
    if target.routed and routing is None:
        raise ValueError("a routed campaign's import needs its chunk router")
    result = ImportResult()

    def rejected(bad: BadRow) -> None:
        if on_reject is not None:
            on_reject(bad)

    seen = NumberSet(_numbers_in(db, target.id))
    # One connection for the whole import, one transaction per chunk: a new
    # SQLite connection per chunk costs a WAL checkpoint on each close.
    with db.session() as session:
        _import(session, target, rows, preparer, chunk_size, processes, seen, result, rejected,
                on_progress, db.clock, routing)  # fmt: skip
    return result


def _import(
    session: Session,
    target: CampaignTarget,
    rows: Iterable[Row | BadRow],
    preparer: RowPreparer,
    chunk_size: int,
    processes: int | None,
    seen: NumberSet,
    result: ImportResult,
    rejected: Callable[[BadRow], None],
    on_progress: Callable[[ImportResult], None] | None,
    clock: Clock,
    routing: ChunkRouter | None,
) -> None:
    chunk = Chunk()
    for item in prepare_all(preparer, rows, processes):
        if isinstance(item, BadRow):
            chunk.rejected.append(item)
            continue
        chunk.prepared.append(item)
        if len(chunk.prepared) >= chunk_size:
            _store(session, target, chunk, seen, result, clock(), routing)
            chunk.flush(rejected)
            if on_progress is not None:
                on_progress(result)
    _store(session, target, chunk, seen, result, clock(), routing)
    chunk.flush(rejected)
    if on_progress is not None:
        on_progress(result)


@dataclass
class Chunk:
    """Rows on their way to one transaction, and the rejections among them."""

    prepared: list[Prepared] = field(default_factory=list)
    rejected: list[BadRow] = field(default_factory=list)

    def flush(self, report: Callable[[BadRow], None]) -> None:
        for bad in self.rejected:  # in line order (sorted when stored)
            report(bad)
        self.prepared, self.rejected = [], []


def _numbers_in(db: Database, campaign_id: int) -> Iterator[int]:
    """The campaign's numbers already stored (a second import of the same list)."""
    with db.session() as session:
        rows = session.execute(
            select(messages.c.recipient)
            .where(messages.c.campaign_id == campaign_id)
            .execution_options(yield_per=10_000)
        )
        for (recipient,) in rows:
            yield int(recipient[1:])


def _store(
    session: Session,
    target: CampaignTarget,
    chunk: Chunk,
    seen: NumberSet,
    result: ImportResult,
    now: datetime,
    routing: ChunkRouter | None = None,
) -> None:
    fresh = seen.add_new([int(p.recipient[1:]) for p in chunk.prepared])
    unique: list[Prepared] = []
    for p, new in zip(chunk.prepared, fresh, strict=True):
        if new:
            unique.append(p)
        else:
            result.duplicates += 1
            chunk.rejected.append(
                BadRow(p.line, f"duplicate: {p.recipient} is already in the list")
            )
    # Routed before the transaction: the snapshot's Redis reads do not hold
    # the campaign's row lock.
    routed: dict[int, Routed] = {}
    if routing is not None:
        for item in routing.assign(unique):
            if isinstance(item, BadRow):
                chunk.rejected.append(item)
            else:
                routed[item.message.line] = item
        unique = [p for p in unique if p.line in routed]
    with session.begin():
        _lock_importable(session, target.id)
        blocked = opted_out(session, (p.recipient for p in unique)) if unique else set()
        keep = [p for p in unique if p.recipient not in blocked]
        for p in unique:
            if p.recipient in blocked:
                result.opted_out += 1
                chunk.rejected.append(BadRow(p.line, f"{p.recipient} is on the opt-out list"))
        chunk.rejected.sort(key=lambda b: b.line)
        for bad in chunk.rejected:
            result.reject(bad)
        if routing is not None:
            store_held(session, target, [_routed_row(routed[p.line]) for p in keep], now)
        else:
            store_held(
                session,
                target,
                [(p.recipient, p.text, p.encoding.value, p.segments, p.params_json) for p in keep],
                now,
            )
        result.imported += len(keep)
        add_to_counters(session, target.id, len(keep), result.rejected - result.recorded, now)
    result.recorded = result.rejected


def _routed_row(r: Routed) -> RoutedRow:
    p = r.message
    return (p.recipient, p.text, p.encoding.value, p.segments, p.params_json, r.vendor,
            r.sender, r.route)  # fmt: skip


def _lock_importable(session: Session, campaign_id: int) -> None:
    status = lock_campaign(session, campaign_id)
    if status is None:
        raise ImportRefused(campaign_id, None)
    if status not in IMPORTABLE:
        raise ImportRefused(campaign_id, CampaignStatus(status))
