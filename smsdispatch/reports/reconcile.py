"""Reconciliation by polling: settle messages whose delivery report never came.

Runs from beat (`smsdispatch.reconcile`, on the maintenance queue) every
`reconcile_interval_seconds`. For each vendor whose adapter has a status query
(Restcomm by Sid, SMSBuddy by id; Cue and Skycore document none, and Messangi
mentions one without specifying it), it takes the messages `accepted` for
`reconcile_after_seconds` without a final status, and `unknown` ones with a
tracking id, asks the vendor about each, and applies the answers as the
webhooks apply reports, together and forward only
(`smsdispatch.store.reports.apply_reports`, stored with source "poll").

An `unknown` message without a tracking id (the answer to its send was
lost: a read timeout, or its worker died before recording it) is searched
for where the vendor can list what it took (Restcomm, by To, From and time):
exactly one listed message with its text, created between our claim and our
giving up (widened by `vendor_clock_tolerance_seconds`, since the vendor's
clock is not ours), that no other message of ours carries, settles it and
records its id. None found, once the vendor has had `lost_send_search_after_seconds`
to list it, means it never arrived: the message goes back to `queued` and is
sent again (DESIGN.md: resend where a query shows the message absent). So
the adapter answers "none" only for a list that shows absence; a list longer
than its page, or an item like ours it cannot judge, is no answer
(providers/restcomm.py `find_sent`).
Several found leaves it for the `unknown_deadline_seconds` sweep.

Pace: status queries are not SMS, so they do not take tokens from the send
limiter (that would slow sending down); they have their own modest limit,
`reconcile_rate_per_second` per vendor, kept in Redis by the same GCRA limiter
so it holds across every worker, and a run asks at most that rate times the
interval, so runs do not pile up behind each other. Searches for lost sends
have a pace of their own, `lost_send_search_rate` (higher: a dead worker
leaves a batch to look for, and each waits unsent until it is looked for).

Messages an answer moved to a final status are counted in the vendors'
delivery figures after the commit, as the webhooks' are (routing/delivery.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from smsdispatch.config.catalog import RateLimit
from smsdispatch.config.settings import Settings
from smsdispatch.limits.policy import Limit
from smsdispatch.providers.base import Adapter
from smsdispatch.providers.registry import ADAPTERS, searchable
from smsdispatch.queueing.services import VendorServices
from smsdispatch.reports.deadline import expire_overdue
from smsdispatch.store.reports import (
    Final,
    Stale,
    Untracked,
    apply_report,
    apply_reports,
    mark_polled,
    reapply_unmatched,
    resend_absent,
    stale_messages,
    tracked_elsewhere,
    untracked_unknown,
)
from smsdispatch.vocabulary import keys
from smsdispatch.vocabulary.delivery import DeliveryReport
from smsdispatch.vocabulary.outcomes import Outcome

log = logging.getLogger(__name__)

Answer = DeliveryReport | Outcome


@dataclass
class ReconcileResult:
    asked: int = 0
    results: Counter[str] = field(default_factory=Counter)  # Applied values, and "no_answer"
    resent: int = 0  # lost sends the vendor had no record of: queued again


def pollable(rt: VendorServices) -> list[str]:
    return [p for p in rt.catalog.providers if ADAPTERS[p].supports_status_query]


Work = Stale | Untracked
Found = list[DeliveryReport] | Outcome


def reconcile_messages(rt: VendorServices) -> ReconcileResult:
    s = rt.settings
    result = ReconcileResult()
    now = rt.clock()
    per_run = _per_run(s.reconcile_rate_per_second, s)
    delivery = rt.delivery
    expire_overdue(rt)
    finals: list[Final] = []
    with rt.db.session() as session, session.begin():
        late = reapply_unmatched(session, now, s.report_unmatched_retry_seconds, finals=finals)
    delivery.record(finals)
    if late:
        result.results["applied_late"] += late
        log.info("reconcile: applied %d reports that came before their send was recorded", late)
    work: dict[str, list[Work]] = {}
    with rt.db.session() as session:
        for provider in pollable(rt):
            work[provider] = list(
                stale_messages(session, provider, now, s.reconcile_after_seconds, per_run)
            )
        for provider in searchable(rt.catalog.providers):
            work.setdefault(provider, []).extend(
                untracked_unknown(
                    session,
                    provider,
                    now,
                    s.reconcile_after_seconds,
                    _per_run(s.lost_send_search_rate, s),
                    listed_after_seconds=s.lost_send_search_after_seconds,
                )
            )
    work = {p: rows for p, rows in work.items() if rows}
    if not work:
        return result
    answers = rt.run(_ask_all(rt, work))
    now = rt.clock()
    finals = []
    with rt.db.session() as session, session.begin():
        asked = [row for rows in answers.values() for row, _ in rows]
        mark_polled(session, [_id(row) for row in asked], now)
        _apply_answers(session, answers, now, result, finals)
    delivery.record(finals)
    result.asked = len(asked)
    log.info("reconcile: asked=%d results=%s", result.asked, dict(result.results))
    return result


def _apply_answers(
    session: Session,
    answers: dict[str, list[tuple[Work, Answer | Found]]],
    now: datetime,
    result: ReconcileResult,
    finals: list[Final],
) -> None:
    """Status-query answers are applied together, as the webhooks' reports
    are (one statement for the lot on PostgreSQL); a search's find is
    applied on its own, so that the next search sees the id it took."""
    queried: list[tuple[str, DeliveryReport]] = []
    for provider, rows in answers.items():
        for row, answer in rows:
            if isinstance(answer, DeliveryReport):
                queried.append((provider, answer))
                continue
            report = _one(session, provider, answer)
            if isinstance(report, DeliveryReport):
                applied = apply_report(session, provider, report, now, source="poll", finals=finals)
                result.results[applied.value] += 1
                continue
            result.results[report] += 1
            if report == "not_found" and isinstance(row, Untracked):
                resend_absent(session, row.message.id, provider, now)
                result.resent += 1
    for applied in apply_reports(session, queried, now, source="poll", finals=finals):
        result.results[applied.value] += 1


def _per_run(rate: float, s: Settings) -> int:
    """What a run may ask at `rate` so that runs do not pile up behind each other."""
    return max(1, min(s.reconcile_batch, int(rate * s.reconcile_interval_seconds)))


def _id(row: Work) -> int:
    return row.id if isinstance(row, Stale) else row.message.id


def _one(session: Session, provider: str, answer: Outcome | Found) -> DeliveryReport | str:
    """What a search found to apply, or why there is nothing ("no_answer",
    "not_found", "several_found")."""
    if isinstance(answer, Outcome):
        return "no_answer"
    ours = tracked_elsewhere(session, provider, [r.tracking_id for r in answer if r.tracking_id])
    candidates = [r for r in answer if r.tracking_id not in ours]
    if len(candidates) == 1:
        return candidates[0]
    return "not_found" if not candidates else "several_found"


async def _ask_all(
    rt: VendorServices, work: dict[str, list[Work]]
) -> dict[str, list[tuple[Work, Answer | Found]]]:
    providers = list(work)
    done = await asyncio.gather(*(_ask(rt, p, work[p]) for p in providers))
    return dict(zip(providers, done, strict=True))


async def _ask(
    rt: VendorServices, provider: str, rows: list[Work]
) -> list[tuple[Work, Answer | Found]]:
    """Ask about each row at the vendor's polling pace; stop when the pace
    would make us wait long (the rest wait for the next run)."""
    adapter = rt.adapter(provider)
    limits = {
        Stale: _pace(keys.rate_status_query(provider), rt.settings.reconcile_rate_per_second),
        Untracked: _pace(keys.rate_lost_search(provider), rt.settings.lost_send_search_rate),
    }
    tolerance = rt.settings.vendor_clock_tolerance_seconds
    asked: list[Work] = []
    pending: list[asyncio.Task[Answer | Found]] = []
    spent: set[type] = set()
    for row in rows:
        if type(row) in spent:
            continue
        grant = await rt.limiter.acquire(
            [limits[type(row)]], max_wait=rt.settings.limiter_max_wait_seconds
        )
        if not grant.granted:
            spent.add(type(row))  # this kind's pace is used up; the other kind may go on
            continue
        if grant.wait > 0:
            await asyncio.sleep(grant.wait)
        asked.append(row)
        pending.append(asyncio.create_task(_question(adapter, row, tolerance)))
    answers = await asyncio.gather(*pending, return_exceptions=True)
    out: list[tuple[Work, Answer | Found]] = []
    for row, answer in zip(asked, answers, strict=True):
        if isinstance(answer, BaseException):
            log.warning("%s: a status query failed: %s", provider, type(answer).__name__)
            continue
        out.append((row, answer))
    return out


def _pace(key: str, rate: float) -> Limit:
    burst = max(1, min(10, int(rate)))
    return Limit.from_rate(
        key, RateLimit(count=max(burst, round(rate * 60)), per_seconds=60, burst=burst)
    )


async def _question(adapter: Adapter[Any], row: Work, tolerance: float) -> Answer | Found:
    if isinstance(row, Stale):
        return await adapter.query_status(row.tracking_id)
    slack = timedelta(seconds=tolerance)
    return await adapter.find_sent(row.message, row.claimed_at - slack, row.sent_at + slack)
