"""The gate sends a request on its slot, or not on that slot at all."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from smsdispatch.config.catalog import load_catalog
from smsdispatch.config.settings import DEFAULT_CATALOG
from smsdispatch.limits.gate import STALE_SLOT_TRIES, LimiterGate
from smsdispatch.limits.gcra import Grant
from smsdispatch.limits.policy import Limit
from smsdispatch.vocabulary.message import OutboundMessage, new_reference
from smsdispatch.vocabulary.outcomes import Outcome, OutcomeKind

JITTER = 0.05


class StarvedLimiter:
    """Grants every slot at once, but the first `late_answers` answers reach
    the caller `stall` seconds late, as in a process whose CPU is taken."""

    def __init__(self, *, late_answers: int, stall: float) -> None:
        self.late_answers, self.stall = late_answers, stall
        self.asked = 0

    async def acquire(
        self,
        required: Sequence[Limit],
        tokens: int = 1,
        *,
        max_wait: float,
        candidates: Sequence[Limit] = (),
    ) -> Grant:
        self.asked += 1
        if self.asked <= self.late_answers:
            time.sleep(self.stall)  # noqa: ASYNC251  (holds the loop, as a starved process would)
        return Grant(True, 0.0)


def admit(limiter: StarvedLimiter) -> Sequence[OutboundMessage] | Outcome:
    entry = load_catalog(DEFAULT_CATALOG).get("cue")
    gate = LimiterGate(
        limiter,  # type: ignore[arg-type]  # the same acquire() as RedisLimiter
        entry,
        max_wait=2.0,
        jitter=JITTER,
        clock=lambda: datetime(2030, 1, 1, 12, tzinfo=UTC),
    )
    message = OutboundMessage(
        id=1, reference=new_reference(), recipient="+15550001", sender="12345", text="hi"
    )
    return asyncio.run(gate.admit([message]))


def test_a_request_that_wakes_on_time_uses_its_slot() -> None:
    limiter = StarvedLimiter(late_answers=0, stall=0)
    assert isinstance(admit(limiter), list)
    assert limiter.asked == 1


def test_a_request_that_wakes_later_than_its_slot_plus_jitter_takes_a_fresh_slot() -> None:
    limiter = StarvedLimiter(late_answers=1, stall=JITTER * 4)
    assert isinstance(admit(limiter), list)
    assert limiter.asked == 2


def test_a_request_late_for_every_slot_is_deferred_not_sent() -> None:
    limiter = StarvedLimiter(late_answers=STALE_SLOT_TRIES, stall=JITTER * 4)
    outcome = admit(limiter)
    assert isinstance(outcome, Outcome)
    assert outcome.kind is OutcomeKind.DEFERRED
    assert limiter.asked == STALE_SLOT_TRIES
