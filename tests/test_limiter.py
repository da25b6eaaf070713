"""The GCRA limiter on the real Redis: smooth, atomic across limits, no overshoot."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
import redis
import redis.asyncio as aioredis

from smsdispatch.config.catalog import ProviderEntry, RateLimit, load_catalog
from smsdispatch.config.settings import DEFAULT_CATALOG
from smsdispatch.limits.gcra import Grant, RedisLimiter
from smsdispatch.limits.policy import Limit, account_limit
from smsdispatch.simulators.common import max_in_window
from smsdispatch.vocabulary import keys

T = TypeVar("T")


def with_limiter(redis_url: str, body: Callable[[RedisLimiter], Awaitable[T]]) -> T:
    async def go() -> T:
        client = aioredis.Redis.from_url(redis_url)
        try:
            return await body(RedisLimiter(client))
        finally:
            await client.aclose()

    return asyncio.run(go())


def grants(
    redis_url: str,
    limits: list[Limit],
    count: int,
    *,
    tokens: int = 1,
    max_wait: float = 3600,
    candidates: list[Limit] | None = None,
) -> list[Grant]:
    async def body(limiter: RedisLimiter) -> list[Grant]:
        return [
            await limiter.acquire(limits, tokens, max_wait=max_wait, candidates=candidates or [])
            for _ in range(count)
        ]

    return with_limiter(redis_url, body)


@pytest.fixture(autouse=True)
def _clean(redis_client: redis.Redis) -> None:
    """Every test starts from empty limiter keys, with nothing booked (so no
    reset guard: the state is known to be intact)."""
    redis_client.set(keys.LIMITER_STATE, 0)


def test_a_burst_goes_at_once_and_the_rest_waits_one_interval_each(redis_url: str) -> None:
    limit = Limit("t:acct", interval=0.1, burst=3)
    waits = [g.wait for g in grants(redis_url, [limit], 6)]
    assert waits[:3] == pytest.approx([0, 0, 0], abs=0.01)
    assert waits[3:] == pytest.approx([0.1, 0.2, 0.3], abs=0.02)


def test_a_wait_beyond_max_wait_reserves_nothing(redis_url: str) -> None:
    limit = Limit("t:acct", interval=1.0, burst=1)
    first, refused, again = grants(redis_url, [limit], 3, max_wait=0.5)
    assert first.granted
    assert not refused.granted
    assert not again.granted
    assert refused.wait == pytest.approx(1.0, abs=0.05)
    assert again.wait == pytest.approx(refused.wait, abs=0.05)  # nothing was reserved


def test_every_required_limit_is_charged_and_the_slowest_decides(redis_url: str) -> None:
    account = Limit("t:acct", interval=0.01, burst=10)
    sender = Limit("t:sender", interval=1.0, burst=1)
    waits = [g.wait for g in grants(redis_url, [account, sender], 3)]
    assert waits == pytest.approx([0, 1.0, 2.0], abs=0.05)


def test_a_batch_takes_as_many_tokens_as_messages(redis_url: str) -> None:
    limit = Limit("t:acct", interval=0.1, burst=10)
    first, second = grants(redis_url, [limit], 2, tokens=10)
    assert first.wait == pytest.approx(0, abs=0.01)
    assert second.wait == pytest.approx(1.0, abs=0.05)


def test_a_pool_spreads_messages_over_its_senders(redis_url: str) -> None:
    pool = [Limit(f"t:lc{i}", interval=1.0, burst=1) for i in range(4)]
    result = grants(redis_url, [], 8, candidates=pool)
    assert sorted(g.choice for g in result[:4] if g.choice is not None) == [0, 1, 2, 3]
    assert [g.wait for g in result[:4]] == pytest.approx([0] * 4, abs=0.05)
    assert [g.wait for g in result[4:]] == pytest.approx([1.0] * 4, abs=0.05)


@pytest.mark.parametrize(
    ("count", "per_seconds", "burst"), [(1000, 60, 10), (1, 1, 1), (60, 10, 5)]
)
def test_no_sliding_window_holds_more_than_the_ceiling(
    redis_url: str, count: int, per_seconds: float, burst: int
) -> None:
    limit = Limit.from_rate("t:acct", RateLimit(count=count, per_seconds=per_seconds, burst=burst))
    reserved = grants(redis_url, [limit], 3 * count)
    send_times = [g.slot for g in reserved]
    assert max_in_window(send_times, per_seconds) <= count
    # ...while using the allowed rate in full (within the safety margin).
    assert max_in_window(send_times, per_seconds) >= 0.98 * count


@pytest.mark.parametrize(("count", "per_seconds", "burst"), [(100, 1, 10), (1000, 60, 10)])
def test_a_limit_that_keeps_less_burst_than_the_catalog_allows_runs_faster_and_still_holds(
    redis_url: str, count: int, per_seconds: float, burst: int
) -> None:
    rate = RateLimit(count=count, per_seconds=per_seconds, burst=burst)
    full = Limit.from_rate("t:full", rate)
    lean = Limit.from_rate("t:acct", rate, burst=1)
    assert (lean.burst, full.burst) == (1, burst)
    assert lean.per_minute > full.per_minute
    send_times = [g.slot for g in grants(redis_url, [lean], 3 * count)]
    assert max_in_window(send_times, per_seconds) <= count


def test_the_limiter_never_keeps_more_burst_than_the_catalog_allows() -> None:
    rate = RateLimit(count=100, per_seconds=1, burst=10)
    assert Limit.from_rate("t:acct", rate, burst=50).burst == 10


def test_an_account_limit_keeps_the_burst_of_the_vendors_largest_request() -> None:
    catalog = load_catalog(DEFAULT_CATALOG)
    bursts = {
        name: limit.burst
        for name in ("cue", "messangi", "smsbuddy")
        if (limit := account_limit(catalog.get(name), jitter=0.05)) is not None
    }
    # Cue has no batch endpoint; Messangi's batch of 100 fits its burst of 100;
    # SMSBuddy's batches are cut to its burst of 10.
    assert bursts == {"cue": 1, "messangi": 100, "smsbuddy": 10}


def test_a_vendor_that_counts_segments_keeps_the_catalogs_whole_burst() -> None:
    entry = ProviderEntry(
        name="segments",
        counts_segments=True,
        account_limit=RateLimit(count=100, per_seconds=1, burst=10),
    )
    limit = account_limit(entry, jitter=0.05)
    assert limit is not None
    assert limit.burst == 10  # one request of a long text is several tokens


def test_a_burst_larger_than_the_ceiling_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="leaves no room"):
        Limit.from_rate("t:acct", RateLimit(count=5, per_seconds=1, burst=7))


def test_after_redis_loses_its_state_no_slot_is_granted_inside_the_forgotten_bookings(
    redis_url: str, redis_client: redis.Redis
) -> None:
    limit = Limit("t:acct", interval=0.1, burst=1)

    async def body(limiter: RedisLimiter) -> tuple[list[Grant], Grant]:
        booked = [await limiter.acquire([limit], max_wait=2.0) for _ in range(15)]
        redis_client.flushdb()  # Redis restarted empty: the bookings are forgotten
        return booked, await limiter.acquire([limit], max_wait=10.0)

    async def guarded(limiter: RedisLimiter) -> tuple[list[Grant], Grant]:
        return await body(RedisLimiter(limiter._client, reset_guard=2.0))

    booked, after = with_limiter(redis_url, guarded)
    assert max(g.slot for g in booked) > booked[0].slot + 1.0
    assert after.slot >= max(g.slot for g in booked)


def test_an_idle_limit_grants_at_once_while_the_state_is_intact(redis_url: str) -> None:
    limit = Limit("t:acct", interval=0.1, burst=1)

    async def body(limiter: RedisLimiter) -> Grant:
        await limiter.acquire([Limit("t:other", 0.1, 1)], max_wait=1.0)  # state exists
        return await limiter.acquire([limit], max_wait=1.0)

    assert with_limiter(redis_url, body).wait == pytest.approx(0, abs=0.01)
