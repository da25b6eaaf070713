"""What `smsdispatch limits` shows: every limit, its current use, who waits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import redis.asyncio as aioredis
from rich import box
from rich.table import Column, Table
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from smsdispatch.config.catalog import Catalog
from smsdispatch.limits.gcra import RedisLimiter
from smsdispatch.limits.policy import Limit, account_limit, sender_limit
from smsdispatch.store.models import messages
from smsdispatch.vocabulary import keys
from smsdispatch.vocabulary.status import MessageStatus


@dataclass(frozen=True, slots=True)
class LimitRow:
    provider: str
    scope: str  # "account" or "sender <id>"
    ceiling: str  # as the catalog states it
    steady_per_minute: float  # what the limiter lets through, for every sliding window
    booked_ahead_seconds: float  # reservations already made: the current use
    waiting_due: int  # queued and due: will be sent as capacity allows
    waiting_later: int  # queued for later: back-off, deferral, quiet hours, pauses


def waiting_counts(session: Session, now: datetime) -> dict[str, tuple[int, int]]:
    m = messages.c
    later = case((m.next_attempt_at > now, 1), else_=0)
    rows = session.execute(
        select(m.provider, func.count(), func.sum(later))
        .where(m.status == MessageStatus.QUEUED)
        .group_by(m.provider)
    )
    return {p: (int(total) - int(held or 0), int(held or 0)) for p, total, held in rows}


async def limit_rows(
    catalog: Catalog, client: aioredis.Redis, waiting: dict[str, tuple[int, int]], jitter: float
) -> list[LimitRow]:
    limiter = RedisLimiter(client)
    rows: list[LimitRow] = []
    for name, entry in catalog.providers.items():
        due, later = waiting.get(name, (0, 0))
        scopes: list[tuple[str, str, Limit]] = []
        rate = entry.account_limit
        account = account_limit(entry, jitter)
        if rate is not None and account is not None:
            ceiling = f"{rate.count}/{rate.per_seconds:g}s burst {rate.burst}"
            scopes.append(("account", ceiling, account))
        async for raw in client.scan_iter(match=keys.rate_sender(name, "*")):
            sender = raw.decode().rsplit(":", 1)[-1]
            sender_rate = entry.sender_limits.get(entry.kind_of(sender))
            limit = sender_limit(entry, sender, jitter)
            if sender_rate is not None and limit is not None:
                ceiling = f"{sender_rate.count}/{sender_rate.per_seconds:g}s"
                scopes.append((f"sender {sender}", ceiling, limit))
        for scope, ceiling, limit in scopes:
            rows.append(
                LimitRow(
                    name,
                    scope,
                    ceiling,
                    round(limit.per_minute, 1),
                    await limiter.backlog_seconds(limit),
                    due if scope == "account" else 0,
                    later if scope == "account" else 0,
                )
            )
    return rows


def limits_table(rows: Sequence[LimitRow], states: Mapping[str, str]) -> Table:
    """The rows as a table that fits an 80-column terminal with every word
    whole: six columns, the numbers under two-line headers that never wrap,
    and only the limit and the state (sending, paused and why, quiet until,
    on the vendor's account row) wrapping, at spaces."""
    table = Table(
        Column("vendor", no_wrap=True),
        Column("limit", min_width=11),
        Column("steady\nper min", justify="right", no_wrap=True),
        Column("booked\nahead", justify="right", no_wrap=True),
        Column("waiting\ndue/later", justify="right", no_wrap=True),
        Column("state", min_width=12),
        title="rate limits",
        box=box.SIMPLE_HEAD,
    )
    for row in rows:
        table.add_row(
            row.provider,
            f"{row.scope}: {row.ceiling}",
            f"{row.steady_per_minute:g}",
            f"{row.booked_ahead_seconds:.1f}s",
            f"{row.waiting_due}/{row.waiting_later}",
            states.get(row.provider, "") if row.scope == "account" else "",
        )
    return table
