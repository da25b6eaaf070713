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

import redis

from config.catalog import UnknownProviderError
from providers.outcomes import Outcome, OutcomeKind
from sending import pauses
from sending.transitions import RowUpdate, hold, invalid, plan_update
from store.optouts import opted_out
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
        claimed = claim(session, ids, rt.clock())
        # Checked here, at the last moment, as well as where messages enter:
        # a number may opt out while its campaign is waiting to be sent.
        blocked = opted_out(session, (r.recipient for r in claimed)) if claimed else set()
    summary.claimed = len(claimed)
    if not claimed:
        return summary

    updates: list[RowUpdate] = []
    to_send: dict[str, list[Claimed]] = defaultdict(list)
    now = rt.clock()
    for row in claimed:
        problem = row_problem(rt, row)
        if row.recipient in blocked:
            updates.append(
                invalid(
                    row.id, row.attempts, "the recipient is on the opt-out list", now, "opted_out"
                )
            )
        elif problem:
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
    now = rt.clock()
    calls: list[tuple[Claimed, Outcome]] = []
    for provider, outcomes in zip(providers, results, strict=True):
        rows = to_send[provider]
        entry = rt.catalog.get(provider)
        for row, outcome in zip(rows, outcomes, strict=True):
            calls.append((row, outcome))
            updates.append(plan_update(row.id, row.attempts, outcome, entry, now))

    # The results first: a Redis hiccup below must not cost what the vendors said.
    with rt.db.session() as session, session.begin():
        apply_updates(session, updates, now)
        log_attempts(session, calls, now)
    for provider, outcomes in zip(providers, results, strict=True):
        try:
            pause_if_the_vendor_said_so(rt, provider, outcomes)
        except redis.RedisError:
            log.warning("could not record %s's pause in Redis", provider, exc_info=True)
    # The batch's counts and limiter waits: one Redis round trip (best-effort).
    rt.metrics.count_sends((row.provider, outcome.kind.value) for row, outcome in calls)
    rt.metrics.flush(rt.redis)
    summary.outcomes.update(u.status.value for u in updates)
    log.info("sent batch: claimed=%d outcomes=%s", summary.claimed, dict(summary.outcomes))
    return summary


async def _send_all(rt: Runtime, groups: list[list[Claimed]]) -> list[list[Outcome]]:
    return list(
        await asyncio.gather(
            *(
                rt.adapter(rows[0].provider).send(
                    [r.outbound(rt.campaign_template(r.campaign_id)) for r in rows]
                )
                for rows in groups
            )
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


def pause_if_the_vendor_said_so(rt: Runtime, provider: str, outcomes: Sequence[Outcome]) -> None:
    """Pause the vendor for every worker on an account error or a throttle.

    An account error (bad key, no credit), or an undocumented code that
    repeats across messages, pauses for `pause_seconds`. A
    throttle (429, queue overflow) pauses for the vendor's Retry-After or,
    adaptively, for `throttle_pause_seconds` doubled with each throttle in a
    row; then sending resumes by itself when the pause key expires.
    """
    policy = rt.catalog.get(provider).retry
    pauses.pause_if_undocumented_code_repeats(rt.redis, provider, outcomes, policy)
    account = next((o for o in outcomes if o.kind is OutcomeKind.ACCOUNT), None)
    if account is not None:
        reason = f"{account.code}: {account.reason}"
        pauses.pause(rt.redis, provider, policy.pause_seconds, reason)
        log.warning("paused %s for %.0fs: %s", provider, policy.pause_seconds, reason)
        return
    throttled = next((o for o in outcomes if o.kind is OutcomeKind.RATE_LIMITED), None)
    if throttled is None:
        return
    streak = pauses.count_throttle(rt.redis, provider, policy.throttle_pause_cap_seconds * 2)
    seconds = min(
        policy.throttle_pause_cap_seconds, policy.throttle_pause_seconds * 2.0 ** (streak - 1)
    )
    seconds = max(seconds, throttled.retry_after or 0.0)
    reason = f"throttled by the vendor ({throttled.code}: {throttled.reason})"
    pauses.pause(rt.redis, provider, seconds, reason)
    log.warning("paused %s for %.1fs: %s (throttle %d in a row)", provider, seconds, reason, streak)
