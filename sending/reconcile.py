"""Reconciliation by polling: settle messages whose delivery report never came.

Runs from beat (`smsdispatch.reconcile`, on the maintenance queue) every
`reconcile_interval_seconds`. For each vendor whose adapter has a status query
(Restcomm by Sid, SMSBuddy by id; Cue, Messangi and Skycore document none), it
takes the messages `accepted` for `reconcile_after_seconds` without a final
status, and `unknown` ones with a tracking id, asks the vendor about each, and
applies every answer through the same forward-only update as the webhooks
(`store.reports.apply_report`, stored with source "poll").

Pace: status queries are not SMS, so they do not take tokens from the send
limiter (that would slow sending down); they have their own modest limit,
`reconcile_rate_per_second` per vendor, kept in Redis by the same GCRA limiter
so it holds across every worker, and a run asks at most that rate times the
interval, so runs do not pile up behind each other.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field

from config.catalog import RateLimit
from providers.outcomes import Outcome
from providers.registry import ADAPTERS
from providers.reports import DeliveryReport
from store.reports import Stale, apply_report, mark_polled, stale_messages
from workers import keys
from workers.limiter import Limit
from workers.runtime import Runtime

log = logging.getLogger(__name__)

Answer = DeliveryReport | Outcome


@dataclass
class ReconcileResult:
    asked: int = 0
    results: Counter[str] = field(default_factory=Counter)  # Applied values, and "no_answer"


def pollable(rt: Runtime) -> list[str]:
    return [p for p in rt.catalog.providers if ADAPTERS[p].supports_status_query]


def reconcile_messages(rt: Runtime) -> ReconcileResult:
    s = rt.settings
    result = ReconcileResult()
    now = rt.clock()
    per_run = max(
        1, min(s.reconcile_batch, int(s.reconcile_rate_per_second * s.reconcile_interval_seconds))
    )
    with rt.db.session() as session:
        stale = {
            provider: stale_messages(session, provider, now, s.reconcile_after_seconds, per_run)
            for provider in pollable(rt)
        }
    stale = {p: rows for p, rows in stale.items() if rows}
    if not stale:
        return result
    answers = rt.run(_ask_all(rt, stale))
    now = rt.clock()
    with rt.db.session() as session, session.begin():
        asked = [row for rows in answers.values() for row, _ in rows]
        mark_polled(session, [row.id for row in asked], now)
        for provider, rows in answers.items():
            for _, answer in rows:
                if isinstance(answer, DeliveryReport):
                    applied = apply_report(session, provider, answer, now, source="poll")
                    result.results[applied.value] += 1
                else:
                    result.results["no_answer"] += 1
    result.asked = len(asked)
    log.info("reconcile: asked=%d results=%s", result.asked, dict(result.results))
    return result


async def _ask_all(
    rt: Runtime, stale: dict[str, list[Stale]]
) -> dict[str, list[tuple[Stale, Answer]]]:
    providers = list(stale)
    done = await asyncio.gather(*(_ask(rt, p, stale[p]) for p in providers))
    return dict(zip(providers, done, strict=True))


async def _ask(rt: Runtime, provider: str, rows: list[Stale]) -> list[tuple[Stale, Answer]]:
    """Ask about each row at the vendor's polling pace; stop when the pace
    would make us wait long (the rest wait for the next run)."""
    rate = rt.settings.reconcile_rate_per_second
    burst = max(1, min(10, int(rate)))
    limit = Limit.from_rate(
        keys.rate_status_query(provider),
        RateLimit(count=max(burst, round(rate * 60)), per_seconds=60, burst=burst),
    )
    adapter = rt.adapter(provider)
    asked: list[Stale] = []
    pending: list[asyncio.Task[Answer]] = []
    for row in rows:
        grant = await rt.limiter.acquire([limit], max_wait=rt.settings.limiter_max_wait_seconds)
        if not grant.granted:
            break
        if grant.wait > 0:
            await asyncio.sleep(grant.wait)
        asked.append(row)
        pending.append(asyncio.create_task(adapter.query_status(row.tracking_id)))
    answers = await asyncio.gather(*pending, return_exceptions=True)
    out: list[tuple[Stale, Answer]] = []
    for row, answer in zip(asked, answers, strict=True):
        if isinstance(answer, BaseException):
            log.warning("%s: a status query failed: %s", provider, type(answer).__name__)
            continue
        out.append((row, answer))
    return out
