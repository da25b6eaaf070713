"""One send task's work: claim rows, send them, persist what the vendors said.

The database is touched twice per task (one claim, one persist), whatever the
batch size; the vendor calls in between run concurrently on the process's
event loop, and each answer is journaled in Redis as it arrives
(sending/journal.py), so that neither a killed worker nor a database outage
between the answer and the commit costs a resend.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import redis

from smsdispatch.config.catalog import ProviderEntry, UnknownProviderError
from smsdispatch.limits import pauses
from smsdispatch.providers.base import AnswerHook
from smsdispatch.sending import journal
from smsdispatch.sending.failover import Failover
from smsdispatch.sending.journal import JournalWriter
from smsdispatch.sending.services import SendServices
from smsdispatch.sending.transitions import hold, invalid, result_of
from smsdispatch.store.db import DATABASE_AWAY, retrying
from smsdispatch.store.optouts import opted_out
from smsdispatch.store.outbox import (
    REFUSED,
    Claimed,
    claim,
    new_claim_token,
    write_results,
    write_results_once,
)
from smsdispatch.store.reports import Final
from smsdispatch.store.results import SendResult
from smsdispatch.vocabulary.errors import PeerUnavailable
from smsdispatch.vocabulary.message import Encoding, OutboundMessage
from smsdispatch.vocabulary.outcomes import Outcome, OutcomeKind

log = logging.getLogger(__name__)

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
ENCODINGS = frozenset(e.value for e in Encoding)


@dataclass
class SendSummary:
    claimed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)


class ClaimFailed(PeerUnavailable):
    """The database could not be reached to claim the rows: nothing was sent,
    and the task should come back shortly (tasks/send.py)."""


# A worker finishes with its claim (written, or handed to the sweeper) this
# long before the sweeper would take it for dead.
DEADLINE_MARGIN_SECONDS = 5.0


def send_messages(rt: SendServices, ids: Sequence[int]) -> SendSummary:
    summary = SendSummary()
    claimed_at = time.monotonic()
    claimed, blocked = _claim(rt, ids)
    summary.claimed = len(claimed)
    if not claimed:
        return summary

    now = rt.clock()
    failover = _failover(rt, claimed, now)
    set_aside, to_send = _set_aside(rt, claimed, blocked, now, failover)
    providers = list(to_send)
    groups = [to_send[p] for p in providers]
    outcomes, results = rt.run(_send_all(rt, groups, set_aside, failover))

    # The results first: a Redis hiccup below must not cost what the vendors said.
    deadline = claimed_at + rt.settings.sending_deadline_seconds - DEADLINE_MARGIN_SECONDS
    persist(rt, results, deadline)
    for provider, provider_outcomes in zip(providers, outcomes, strict=True):
        try:
            pause_if_the_vendor_said_so(rt, provider, provider_outcomes)
            rt.health.record(
                provider,
                (o.kind for o in provider_outcomes),
                (o.seconds for o in provider_outcomes if o.seconds is not None),
            )
        except redis.RedisError:
            log.warning("could not record %s's pause or health in Redis", provider, exc_info=True)
    # The batch's counts and limiter waits: one Redis round trip (best-effort).
    # What our own side held back is not a send: counted apart.
    every = [
        (provider, outcome)
        for provider, provider_outcomes in zip(providers, outcomes, strict=True)
        for outcome in provider_outcomes
    ]
    rt.metrics.count_sends(
        (p, o.kind.value) for p, o in every if o.kind is not OutcomeKind.DEFERRED
    )
    rt.metrics.count_deferrals((p, o.code) for p, o in every if o.kind is OutcomeKind.DEFERRED)
    rt.metrics.count_failovers(_moves(claimed, results))
    rt.metrics.flush(rt.redis)
    summary.outcomes.update(r.update.status.value for r in results)
    log.info("sent batch: claimed=%d outcomes=%s", summary.claimed, dict(summary.outcomes))
    return summary


def _moves(claimed: Sequence[Claimed], results: Sequence[SendResult]) -> Iterator[tuple[str, str]]:
    """(from, to) for each row this batch moved to another vendor."""
    providers = {row.id: row.provider for row in claimed}
    for result in results:
        to = result.update.provider
        if to is not None and to != providers[result.update.id]:
            yield providers[result.update.id], to


def _claim(rt: SendServices, ids: Sequence[int]) -> tuple[list[Claimed], set[str]]:
    """Claim the rows under a token of this task's, retrying while the
    database is away; `ClaimFailed` if it stays away."""
    token = new_claim_token()
    tries = 0

    def once() -> tuple[list[Claimed], set[str]]:
        nonlocal tries
        tries += 1
        # A retry may follow a claim that committed unseen: its rows are ours too.
        return _claim_once(rt, ids, token, again=tries > 1)

    try:
        return retrying(once, rt.settings.database_retry_seconds, what="claiming")
    except DATABASE_AWAY as exc:
        raise ClaimFailed(f"could not claim {len(ids)} messages: {type(exc).__name__}") from exc


def _claim_once(
    rt: SendServices, ids: Sequence[int], token: str, *, again: bool
) -> tuple[list[Claimed], set[str]]:
    """Claim the rows, and read what sending them needs, in one transaction."""
    with rt.db.session() as session, session.begin():
        claimed = claim(session, ids, rt.clock(), token, again=again)
        if not claimed:
            return [], set()
        # Checked here, at the last moment, as well as where messages enter:
        # a number may opt out while its campaign is waiting to be sent.
        blocked = opted_out(session, (r.recipient for r in claimed))
        rt.load_templates(session, (r.campaign_id for r in claimed))
    return claimed, blocked


def _failover(rt: SendServices, claimed: Sequence[Claimed], now: datetime) -> Failover | None:
    """The batch's failover, if it holds routed rows (its routing snapshot of
    their routes is read only if one may move; resting weights without Redis)."""
    routes = {r.route for r in claimed if r.route is not None}
    chosen = [rt.catalog.routes[name] for name in sorted(routes) if name in rt.catalog.routes]
    if not chosen:
        return None
    return Failover(rt.router, chosen, now, rt.unconfigured)


def _set_aside(
    rt: SendServices,
    claimed: Sequence[Claimed],
    blocked: set[str],
    now: datetime,
    failover: Failover | None = None,
) -> tuple[list[SendResult], dict[str, list[Claimed]]]:
    """The results of rows that cannot go now (opted out, invalid, their
    vendor paused) or that move to another vendor of their route before any
    call (their vendor paused or its breaker open), and the rest by vendor."""
    results: list[SendResult] = []
    to_send: dict[str, list[Claimed]] = defaultdict(list)
    for row in claimed:
        problem = row_problem(rt, row)
        if row.recipient in blocked:
            reason = "the recipient is on the opt-out list"
            results.append(SendResult(invalid(row.ref, reason, now, "opted_out")))
        elif problem:
            results.append(SendResult(invalid(row.ref, problem, now)))
        else:
            to_send[row.provider].append(row)
    if failover is not None:
        results += _move_from_closed(failover, to_send, now)
    for provider in list(to_send):
        try:
            pause = pauses.current_pause(rt.redis, provider, now)
        except redis.RedisError:
            pause = None  # the limiter will not grant a slot without Redis either
        if pause is not None:
            # A pause without an end is looked at again after `pause_seconds`
            # (a resume releases the rows at once: limits/control.py).
            until = pause.until or now + timedelta(
                seconds=rt.catalog.get(provider).retry.pause_seconds
            )
            reason = f"{provider} paused: {pause.reason}"
            for row in to_send.pop(provider):
                moved = failover.before(row, now, reason) if failover is not None else None
                held = hold(row.ref, until, reason=reason, code=pauses.HELD_CODE)
                results.append(SendResult(moved or held))
    return results, to_send


def _move_from_closed(
    failover: Failover, to_send: dict[str, list[Claimed]], now: datetime
) -> list[SendResult]:
    """Routed rows whose vendor is closed to their route (its breaker open,
    or drained by an operator) move to another vendor of their route before
    any call; the rest stay. (A paused vendor's routed rows move through the
    pause check that follows: `_set_aside`.)"""
    moved: list[SendResult] = []
    for provider, rows in list(to_send.items()):
        routed = [row for row in rows if row.route is not None]
        if not routed:
            continue
        closed = failover.closed(provider)
        staying = [row for row in rows if row.route is None]
        for row in routed:
            update = None
            if closed:
                update = failover.before(row, now, "its breaker is open")
            elif failover.drained(row):
                update = failover.before(row, now, "drained on its route by an operator")
            if update is None:
                staying.append(row)
            else:
                moved.append(SendResult(update))
        if staying:
            to_send[provider] = staying
        else:
            del to_send[provider]
    return moved


def persist(rt: SendServices, results: Sequence[SendResult], deadline: float) -> None:
    """Write the batch's results; never lose one doing it.

    One transaction normally. While the database is away, again with
    back-off (row by row then, so a first try that committed unseen is not
    written twice) for `database_retry_seconds`, but never past `deadline`
    (monotonic), after which the sweeper would take the claim for a dead
    worker's; then the results are handed to the sweeper through Redis
    (sending/journal.py), which writes them once the database is back.
    """
    try:
        _write(rt, results)
    except DATABASE_AWAY:
        budget = min(rt.settings.database_retry_seconds, deadline - time.monotonic())
        log.warning("database unreachable while recording %d results; retrying", len(results))
        try:
            retrying(lambda: _write_once(rt, results), max(0.0, budget), what="recording")
        except DATABASE_AWAY:
            kept = journal.hand_over(rt.redis, results)
            log.error(
                "database unreachable: %d results %s",
                len(results),
                "left for the sweeper in Redis" if kept else "kept only where journaled",
            )
            return
    journal.settle(rt.redis, [r.claim for r in results])


def _write(rt: SendServices, results: Sequence[SendResult]) -> None:
    """One transaction; row by row if the database refuses a value, so one
    result it will not take costs the others nothing."""
    finals: list[Final] = []
    try:
        with rt.db.session() as session, session.begin():
            write_results(session, results, rt.clock(), finals=finals)
    except REFUSED:
        log.exception("the database refused this batch's results; writing them one by one")
        _write_once(rt, results)
        return
    _count_finals(rt, finals)


def _write_once(rt: SendServices, results: Sequence[SendResult]) -> None:
    finals: list[Final] = []
    with rt.db.session() as session, session.begin():
        write_results_once(session, results, rt.clock(), finals=finals)
    _count_finals(rt, finals)


def _count_finals(rt: SendServices, finals: list[Final]) -> None:
    """Reports that came before their send's result and settled it with it
    count in the vendors' delivery figures too (after the commit, so a
    transaction tried again cannot count them twice)."""
    if finals:
        rt.delivery.record(finals)


async def _send_all(
    rt: SendServices,
    groups: list[list[Claimed]],
    set_aside: list[SendResult],
    failover: Failover | None = None,
) -> tuple[list[list[Outcome]], list[SendResult]]:
    """Every group's vendor calls at once; each row's result is journaled as
    soon as its answer comes (the rows set aside at once). Returns each
    group's outcomes and every row's result."""
    writer = JournalWriter(rt.aioredis)
    writer.add(set_aside)
    answered: dict[int, SendResult] = {}

    def keep(rows: list[Claimed]) -> AnswerHook:
        by_id = {row.id: row for row in rows}
        entry = rt.catalog.get(rows[0].provider)

        def hook(sent: Sequence[OutboundMessage], outcomes: Sequence[Outcome]) -> None:
            # Safe in the loop: the database clock resyncs in a thread of its own.
            when = rt.clock()
            results = [
                _result(by_id[m.id], o, entry, when, failover)
                for m, o in zip(sent, outcomes, strict=True)
            ]
            answered.update((r.update.id, r) for r in results)
            writer.add(results)

        return hook

    try:
        outcomes = list(
            await asyncio.gather(
                *(
                    rt.adapter(rows[0].provider).send(
                        [r.outbound(rt.campaign_template(r.campaign_id)) for r in rows],
                        keep(rows),
                    )
                    for rows in groups
                )
            )
        )
    finally:
        await writer.drain()
    results = list(set_aside)
    for rows, group_outcomes in zip(groups, outcomes, strict=True):
        entry = rt.catalog.get(rows[0].provider)
        for row, outcome in zip(rows, group_outcomes, strict=True):
            # A hook that failed left no result: plan it from the outcome.
            results.append(
                answered.get(row.id) or _result(row, outcome, entry, rt.clock(), failover)
            )
    return outcomes, results


def _result(
    row: Claimed,
    outcome: Outcome,
    entry: ProviderEntry,
    at: datetime,
    failover: Failover | None,
) -> SendResult:
    """What one answer leaves to write: the row's next state (moved to another
    vendor of its route where failover may) and the attempt's record."""
    result = result_of(row.ref, outcome, entry, at, row.sender)
    if failover is None:
        return result
    move = failover.after(row, outcome, at)
    if move is not None:
        return replace(result, update=move)
    return replace(result, update=failover.stay(row, outcome, result.update, at))


def row_problem(rt: SendServices, row: Claimed) -> str | None:
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
    if row.encoding not in ENCODINGS:
        return f"encoding is not one of {', '.join(sorted(ENCODINGS))}"
    if not row.text:
        return "text is empty"
    if len(row.text) > entry.max_text_chars:
        return f"text is longer than {entry.max_text_chars} characters"
    if not row.sender:
        return "sender is empty"
    return None


def pause_if_the_vendor_said_so(
    rt: SendServices, provider: str, outcomes: Sequence[Outcome]
) -> None:
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
