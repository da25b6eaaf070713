"""The gate sends a request on its slot, or not on that slot at all."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from smsdispatch.config.catalog import load_catalog
from smsdispatch.config.settings import DEFAULT_CATALOG
from smsdispatch.limits.gate import STALE_SLOT_TRIES, LimiterGate
from smsdispatch.limits.gcra import Grant
from smsdispatch.limits.policy import Limit
from smsdispatch.vocabulary.message import OutboundMessage, new_reference
from smsdispatch.vocabulary.outcomes import Outcome, OutcomeKind

JITTER = 0.05


class StarvedLimiter:
    """Grants a slot `wait` seconds ahead, but the first `late_answers`
    answers reach the caller `stall` seconds late, as in a process whose CPU
    is taken."""

    def __init__(self, *, late_answers: int, stall: float, wait: float = 0.0) -> None:
        self.late_answers, self.stall, self.wait = late_answers, stall, wait
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
        return Grant(True, self.wait)


def gate_for(limiter: StarvedLimiter, jitter: float = JITTER) -> LimiterGate:
    return LimiterGate(
        limiter,  # type: ignore[arg-type]  # the same acquire() as RedisLimiter
        load_catalog(DEFAULT_CATALOG).get("cue"),
        max_wait=2.0,
        jitter=jitter,
        clock=lambda: datetime(2030, 1, 1, 12, tzinfo=UTC),
    )


MESSAGE = OutboundMessage(
    id=1, reference=new_reference(), recipient="+15550001", sender="12345", text="hi"
)


def admit(limiter: StarvedLimiter) -> Sequence[OutboundMessage] | Outcome:
    return asyncio.run(gate_for(limiter).admit([MESSAGE]))


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


def test_a_request_whose_loop_is_held_past_its_slot_takes_a_fresh_slot() -> None:
    """The answer comes in time, but the loop is busy elsewhere when the
    slot comes (the sleep until the slot overruns)."""
    limiter = StarvedLimiter(late_answers=0, stall=0, wait=0.05)

    async def go() -> Sequence[OutboundMessage] | Outcome:
        async def hog() -> None:
            await asyncio.sleep(0.01)
            time.sleep(0.2)  # noqa: ASYNC251  (another task holding the loop)

        hogging = asyncio.create_task(hog())
        admitted = await gate_for(limiter).admit([MESSAGE])
        await hogging
        return admitted

    assert isinstance(asyncio.run(go()), list)
    assert limiter.asked == 2


def test_a_gate_without_a_jitter_allowance_is_refused() -> None:
    with pytest.raises(ValueError, match="jitter"):
        gate_for(StarvedLimiter(late_answers=0, stall=0), jitter=0.0)
