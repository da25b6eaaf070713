"""The gate every request passes just before it leaves: quiet hours, then rate limits.

A request (one message, or one batch) asks the global limiter for as many
tokens as it carries (messages, or segments where the vendor counts those)
on every limit that applies: the vendor account and the sender, or one
member of a sender pool. A short wait is slept here; a longer one is not
held in the worker: the messages are deferred through the database
(`next_attempt_at`) and the sweeper brings them back.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime

from smsdispatch.config.catalog import ProviderEntry
from smsdispatch.limits.gcra import RedisLimiter
from smsdispatch.limits.policy import Limit
from smsdispatch.monitoring.counters import MetricsBuffer
from smsdispatch.vocabulary import keys
from smsdispatch.vocabulary.message import OutboundMessage
from smsdispatch.vocabulary.outcomes import Outcome, OutcomeKind


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
        self.jitter = jitter
        self.clock = clock
        self.account = (
            Limit.from_rate(keys.rate_account(entry.name), entry.account_limit, jitter)
            if entry.account_limit
            else None
        )
        # Requests of one task ask one at a time, and a refusal is remembered
        # until its slot could come: once one request is refused, every later
        # one on the same limits would be too, so they defer without asking
        # Redis again. (Process-local: it can only ask less, never grant more.)
        self._asking = asyncio.Lock()
        self._refused_until: dict[tuple[str, ...], float] = {}

    def sender_limit(self, sender: str) -> Limit | None:
        rate = self.entry.sender_limits.get(self.entry.kind_of(sender))
        if rate is None:
            return None
        return Limit.from_rate(keys.rate_sender(self.entry.name, sender), rate, self.jitter)

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
        quiet = self.entry.quiet_hours
        if quiet is not None and quiet.hold_before_sending:
            now = self.clock()
            opens = quiet.next_open(now)
            if opens is not None:
                return Outcome(
                    OutcomeKind.DEFERRED,
                    code="quiet_hours",
                    reason=f"{self.entry.name} does not send until {opens:%Y-%m-%d %H:%M} UTC",
                    retry_after=(opens - now).total_seconds(),
                )

        tokens = sum(m.segments for m in group) if self.entry.counts_segments else len(group)
        required = [self.account] if self.account else []
        sender = group[0].sender
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
        limit_keys = tuple(lim.key for lim in [*required, *candidates])
        async with self._asking:
            remembered = self._refused_until.get(limit_keys, 0.0) - time.monotonic()
            if remembered > 0:
                return self.defer(remembered + self.max_wait)
            grant = await self.limiter.acquire(
                required, tokens, max_wait=self.max_wait + oversize, candidates=candidates
            )
            if not grant.granted:
                self._refused_until[limit_keys] = time.monotonic() + grant.wait - self.max_wait
                return self.defer(grant.wait)
        if self.metrics is not None:
            self.metrics.observe_wait(self.entry.name, grant.wait)
        if grant.wait > 0:
            await asyncio.sleep(grant.wait)
        if members is None:
            return group
        chosen = (
            members[grant.choice]
            if grant.choice is not None
            else members[group[0].id % len(members)]
        )
        return [replace(m, sender=chosen) for m in group]
