"""The global rate limiter: GCRA in one Lua script on Redis, shared by every worker.

Policy and storage are split as in dramatiq: `Limit` (policy.py) says what a
ceiling means (an emission interval and a burst); `RedisLimiter`, here, stores
each limit's theoretical arrival time (TAT) in Redis and decides atomically.

One call per acquisition: the script reads Redis server time (so the clocks of
worker hosts do not matter), finds the earliest moment at which the request
conforms to *every* limit that applies (the vendor account and the sender),
and reserves that moment on all of them at once. The caller is told how long
to wait and sleeps exactly that long: no polling. If the wait would exceed
`max_wait`, nothing is reserved and the caller defers the message through the
database instead of holding a worker.

A sender pool is a set of candidate keys of which exactly one is charged: the
script picks the candidate that conforms soonest, so N long codes give about
N messages per second together.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis

from smsdispatch.limits.policy import Limit
from smsdispatch.vocabulary import keys

# KEYS: the state marker, the keys every request is charged on, then the
#       candidate keys (a pool).
# ARGV: tokens, max_wait_us, n_required, guard_us, then per limit key (required
#       first, then candidates): interval_us, tolerance_us.
# Returns {granted (1/0), wait_us, chosen candidate (1-based, 0 if none), slot_us}
# where slot_us is the moment reserved (or the first possible), on Redis' clock.
#
# The state marker has no expiry. If it is missing, Redis restarted empty (or
# was flushed) and slots booked before that are forgotten: for one guard
# period every missing limit key counts as booked up to the guard's end, the
# furthest any worker could have booked ahead, so no window is overfilled.
GCRA_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tokens = tonumber(ARGV[1])
local max_wait = tonumber(ARGV[2])
local n_required = tonumber(ARGV[3])
local guard_us = tonumber(ARGV[4])
local function arg(i, j) return tonumber(ARGV[4 + 2 * (i - 1) + j]) end

local marker = redis.call('GET', KEYS[1])
local fresh = 0
if not marker then
  fresh = now + guard_us
  redis.call('SET', KEYS[1], fresh)
else
  fresh = tonumber(marker)
end
local missing_tat = now
if fresh > now then missing_tat = fresh end

local n_limits = #KEYS - 1
local tats = {}
local function conform_at(i)
  local raw = redis.call('GET', KEYS[i + 1])
  local tat = missing_tat
  if raw then tat = tonumber(raw) end
  if tat < now then tat = now end
  tats[i] = tat
  return tat + tokens * arg(i, 1) - arg(i, 2)
end

local at = now
for i = 1, n_required do
  local a = conform_at(i)
  if a > at then at = a end
end

local chosen = 0
if n_limits > n_required then
  local best = nil
  for i = n_required + 1, n_limits do
    local a = conform_at(i)
    if a < at then a = at end
    if best == nil or a < best then best = a; chosen = i end
  end
  at = best
end

local wait = at - now
if wait > max_wait then return {0, wait, 0, at} end

local function reserve(i)
  local base = tats[i]
  if base < at then base = at end
  local tat = base + tokens * arg(i, 1)
  redis.call('SET', KEYS[i + 1], tat, 'PX', math.ceil((tat - now) / 1000) + 1000)
end
for i = 1, n_required do reserve(i) end
if chosen > 0 then reserve(chosen) end
return {1, wait, chosen > 0 and (chosen - n_required) or 0, at}
"""


@dataclass(frozen=True, slots=True)
class Grant:
    granted: bool
    wait: float  # seconds: until the reserved slot if granted, else until one could be
    choice: int | None = None  # index into the candidates, when a pool was given
    slot: float = 0.0  # the moment reserved, in seconds on the Redis server's clock


def _us(seconds: float) -> int:
    return max(0, math.ceil(seconds * 1_000_000))


class RedisLimiter:
    def __init__(self, client: aioredis.Redis, *, reset_guard: float = 3.0) -> None:
        self._client = client
        self._script = client.register_script(GCRA_LUA)
        # After Redis loses the limiter's state, how long every limit counts as
        # fully booked: at least the longest a worker may book ahead (max_wait).
        self._guard_us = _us(reset_guard)

    async def acquire(
        self,
        required: Sequence[Limit],
        tokens: int = 1,
        *,
        max_wait: float,
        candidates: Sequence[Limit] = (),
    ) -> Grant:
        """Reserve `tokens` on every required limit (and on one candidate).

        Granted: sleep `wait` seconds, then send. Not granted: nothing was
        reserved; `wait` says when a slot could come.
        """
        limits = [*required, *candidates]
        if not limits:
            return Grant(True, 0.0)
        args: list[int] = [tokens, _us(max_wait), len(required), self._guard_us]
        for limit in limits:
            args += [_us(limit.interval), _us(limit.interval * limit.burst)]
        granted, wait_us, choice, slot_us = await self._script(
            keys=[keys.LIMITER_STATE, *(limit.key for limit in limits)], args=args
        )
        return Grant(
            bool(granted),
            int(wait_us) / 1_000_000,
            int(choice) - 1 if candidates and granted else None,
            int(slot_us) / 1_000_000,
        )

    async def backlog_seconds(self, limit: Limit) -> float:
        """How far ahead the limit is reserved (0 when idle): its current use."""
        time_s, time_us = await self._client.time()
        raw = await self._client.get(limit.key)
        if raw is None:
            return 0.0
        now = int(time_s) * 1_000_000 + int(time_us)
        return max(0.0, (float(raw) - now) / 1_000_000)
