"""One send task's work: claim rows, send them, persist what the vendors said.

The database is touched twice per task (one claim, one persist), whatever the
batch size; the vendor calls in between run concurrently on the process's
event loop.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from config.catalog import UnknownProviderError
from providers.outcomes import Outcome, OutcomeKind
from sending import pauses
from sending.transitions import RowUpdate, hold, invalid, plan_update
from store.db import utcnow
from store.outbox import Claimed, apply_updates, claim, log_attempts
from workers.runtime import Runtime

log = logging.getLogger(__name__)

E164 = re.compile(r"^\+[1-9]\d{6,14}$")


@dataclass
class SendSummary:
    claimed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)


def send_messages(rt: Runtime, ids: Sequence[int]) -> SendSummary:
    summary = SendSummary()
    with rt.db.session() as session, session.begin():
        claimed = claim(session, ids, utcnow())
    summary.claimed = len(claimed)
    if not claimed:
        return summary

    updates: list[RowUpdate] = []
    to_send: dict[str, list[Claimed]] = defaultdict(list)
    now = utcnow()
    for row in claimed:
        problem = row_problem(rt, row)
        if problem:
            updates.append(invalid(row.id, row.attempts, problem, now))
        else:
            to_send[row.provider].append(row)

    for provider in list(to_send):
        pause = pauses.current_pause(rt.redis, provider, now)
        if pause is not None:
            updates += [
                hold(r.id, r.attempts, pause.until, reason=f"{provider} paused: {pause.reason}")
                for r in to_send.pop(provider)
            ]

    providers = list(to_send)
    results = rt.run(_send_all(rt, [to_send[p] for p in providers])) if providers else []
    now = utcnow()
    calls: list[tuple[Claimed, Outcome]] = []
    for provider, rows, outcomes in zip(providers, to_send.values(), results, strict=True):
        policy = rt.catalog.get(provider).retry
        for row, outcome in zip(rows, outcomes, strict=True):
            calls.append((row, outcome))
            updates.append(plan_update(row.id, row.attempts, outcome, policy, now))
        pause_on_account_error(rt, provider, outcomes)

    with rt.db.session() as session, session.begin():
        apply_updates(session, updates, now)
        log_attempts(session, calls, now)
    summary.outcomes.update(u.status.value for u in updates)
    log.info("sent batch: claimed=%d outcomes=%s", summary.claimed, dict(summary.outcomes))
    return summary


async def _send_all(rt: Runtime, groups: list[list[Claimed]]) -> list[list[Outcome]]:
    return list(
        await asyncio.gather(
            *(rt.adapter(rows[0].provider).send([r.outbound() for r in rows]) for rows in groups)
        )
    )


def row_problem(rt: Runtime, row: Claimed) -> str | None:
    """Why a stored row cannot be sent, for rows another app wrote directly.

    Rows from our own producer always pass; these checks are cheap ones on
    purpose (no phone-number parsing on the hot path).
    """
    try:
        entry = rt.catalog.get(row.provider)
    except UnknownProviderError as exc:
        return str(exc)
    if not E164.match(row.recipient):
        return "recipient is not in E.164 format"
    if not row.text:
        return "text is empty"
    if len(row.text) > entry.max_text_chars:
        return f"text is longer than {entry.max_text_chars} characters"
    if not row.sender:
        return "sender is empty"
    return None


def pause_on_account_error(rt: Runtime, provider: str, outcomes: Sequence[Outcome]) -> None:
    account = next((o for o in outcomes if o.kind is OutcomeKind.ACCOUNT), None)
    if account is None:
        return
    seconds = rt.catalog.get(provider).retry.pause_seconds
    reason = f"{account.code}: {account.reason}"
    pauses.pause(rt.redis, provider, seconds, reason)
    log.warning("paused %s for %.0fs: %s", provider, seconds, reason)
