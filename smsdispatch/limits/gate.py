"""The gate every request passes just before it leaves: quiet hours, then rate limits.

A request (one message, or one batch) asks the global limiter for as many
tokens as it carries (messages, or segments where the vendor counts those)
on every limit that applies: the vendor account and the sender, or one
member of a sender pool. A short wait is slept here; a longer one is not
held in the worker: the messages are deferred through the database
(`next_attempt_at`) and the sweeper brings them back.

A slot holds at the vendor only if the request leaves when the slot comes.
A process that wakes late (the CPU saturated, the loop held up) would send
its late slots together with the on-time ones booked after them, and the
vendor would count more in one second than the ceiling allows. So a request
that wakes later than its slot by more than half the jitter allowance
(every limit leaves room for the whole of it; the other half is for the
rest of the way to the vendor) does not use it: it books a fresh one.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from smsdispatch.config.catalog import ProviderEntry
from smsdispatch.limits.gcra import Grant, RedisLimiter
from smsdispatch.limits.policy import Limit, account_limit, sender_limit
from smsdispatch.monitoring.counters import MetricsBuffer
from smsdispatch.providers.transport import SEND_BY
from smsdispatch.vocabulary.message import OutboundMessage
from smsdispatch.vocabulary.outcomes import Outcome, OutcomeKind

log = logging.getLogger(__name__)

# How many slots a request may miss (the process woke later than the slot
# plus half the jitter allowance) before it is deferred through the database.
STALE_SLOT_TRIES = 3


class LimiterGate:
    def __init__(
        self,
        limiter: RedisLimiter,
        entry: ProviderEntry,
        *,
        max_wait: float,
        jitter: float,
        clock: Callable[[], datetime],
        metrics: MetricsBuffer | None = None,
    ) -> None:
        self.limiter = limiter
        # Waits are counted here and reach Redis with the batch (no round trip).
        self.metrics = metrics
        self.entry = entry
        self.max_wait = max_wait
        if jitter <= 0:
            raise ValueError("the limiter's jitter allowance must be above 0 s")
        self.jitter = jitter
        # Every limit leaves `jitter` for the delay from a slot to the vendor's
        # clock to vary (limits/policy.py): half of it for the process waking
        # late, half for the rest of the way (connection pool, network).
        self.late_allowance = jitter / 2
        self.clock = clock
        self.account = account_limit(entry, jitter)
        # Requests of one task ask one at a time, and a refusal is remembered
        # until its slot could come: once one request is refused, every later
        # one on the same limits would be too, so they defer without asking
        # Redis again. (Process-local: it can only ask less, never grant more.)
        self._asking = asyncio.Lock()
        self._refused_until: dict[tuple[str, ...], float] = {}

    def sender_limit(self, sender: str) -> Limit | None:
        return sender_limit(self.entry, sender, self.jitter)

    def defer(self, wait: float) -> Outcome:
        """Come back shortly before the slot, early enough that the sweeper's
        delay still lands inside max_wait: the next try then books it and the
        vendor's timeline has no gaps. The jitter keeps deferred messages
        from all returning in the same sweep."""
        half = self.max_wait / 2
        return Outcome(
            OutcomeKind.DEFERRED,
            code="rate_limit",
            reason=f"{self.entry.name} rate limit: next slot in {wait:.1f}s",
            retry_after=max(0.0, wait - self.max_wait) + random.uniform(0, half),
        )

    async def admit(self, group: Sequence[OutboundMessage]) -> Sequence[OutboundMessage] | Outcome:
        held = self._quiet_hours_hold()
        if held is not None:
            return held
        tokens = sum(m.segments for m in group) if self.entry.counts_segments else len(group)
        plan = self._plan(group[0].sender, tokens)
        for _ in range(STALE_SLOT_TRIES):
            booked = await self._book(plan, tokens)
            if isinstance(booked, Outcome):
                return booked
            if booked.late <= self.late_allowance:
                # One wait observed per request that leaves (not per slot missed).
                if self.metrics is not None:
                    self.metrics.observe_wait(self.entry.name, booked.grant.wait)
                # The transport refuses to send it past the whole allowance.
                SEND_BY.set(booked.slot_bound + self.jitter)
                return self._with_sender(group, plan.members, booked.grant)
            # The process woke too late for this slot (a saturated CPU, a long
            # pause of the loop): sent now, it would land with slots booked
            # after it and the vendor would count them in the same second.
            # The slot is left unused and a fresh one taken.
            log.debug("%s: slot missed by %.3fs; taking a fresh one", self.entry.name, booked.late)
        return self.defer(self.max_wait)

    def _quiet_hours_hold(self) -> Outcome | None:
        quiet = self.entry.quiet_hours
        if quiet is None or not quiet.hold_before_sending:
            return None
        now = self.clock()
        opens = quiet.next_open(now)
        if opens is None:
            return None
        return Outcome(
            OutcomeKind.DEFERRED,
            code="quiet_hours",
            reason=f"{self.entry.name} does not send until {opens:%Y-%m-%d %H:%M} UTC",
            retry_after=(opens - now).total_seconds(),
        )

    def _plan(self, sender: str, tokens: int) -> _Plan:
        """The limits a request from `sender` is charged on."""
        required = [self.account] if self.account else []
        members = self.entry.pool(sender)
        candidates: list[Limit] = []
        if members is None:
            limit = self.sender_limit(sender)
            required += [limit] if limit else []
        else:
            limits = [self.sender_limit(m) for m in members]
            candidates = [lim for lim in limits if lim is not None]
            if len(candidates) != len(members):  # pool members without limits: any will do
                candidates = []
        # A request larger than a limit's burst can never go at once: allow it
        # the wait it needs (a long text counted in segments), or it would be
        # deferred forever.
        oversize = max(
            [(tokens - lim.burst) * lim.interval for lim in [*required, *candidates]] + [0.0]
        )
        return _Plan(required, candidates, members, oversize)

    async def _book(self, plan: _Plan, tokens: int) -> _Booked | Outcome:
        """Reserve a slot and sleep until it; how late the process woke for it.

        Lateness is counted from the moment we asked plus the wait Redis
        gave: the slot is no earlier than that, so the figure can only
        overstate how late we are (a slow answer from Redis counts as late).
        """
        limit_keys = tuple(lim.key for lim in [*plan.required, *plan.candidates])
        async with self._asking:
            remembered = self._refused_until.get(limit_keys, 0.0) - time.monotonic()
            if remembered > 0:
                return self.defer(remembered + self.max_wait)
            asked = time.monotonic()
            grant = await self.limiter.acquire(
                plan.required,
                tokens,
                max_wait=self.max_wait + plan.oversize,
                candidates=plan.candidates,
            )
            if not grant.granted:
                self._refused_until[limit_keys] = time.monotonic() + grant.wait - self.max_wait
                return self.defer(grant.wait)
        if grant.wait > 0:
            await asyncio.sleep(grant.wait)
        return _Booked(grant, asked + grant.wait)

    @staticmethod
    def _with_sender(
        group: Sequence[OutboundMessage], members: Sequence[str] | None, grant: Grant
    ) -> Sequence[OutboundMessage]:
        """The group, sent from the pool member whose slot was charged."""
        if members is None:
            return group
        chosen = (
            members[grant.choice]
            if grant.choice is not None
            else members[group[0].id % len(members)]
        )
        return [replace(m, sender=chosen) for m in group]


@dataclass(frozen=True, slots=True)
class _Plan:
    required: list[Limit]
    candidates: list[Limit]
    members: Sequence[str] | None
    oversize: float


@dataclass(frozen=True, slots=True)
class _Booked:
    grant: Grant
    slot_bound: float  # monotonic: the slot is no earlier than this

    @property
    def late(self) -> float:
        """Seconds past the slot now (an upper bound)."""
        return time.monotonic() - self.slot_bound
