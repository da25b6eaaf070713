"""Per receiving host, across every worker: how many callbacks in flight, how fast.

One Lua script decides on Redis' clock: a host with CALLBACK_HOST_CONCURRENCY
posts in flight, or whose rate (GCRA, CALLBACK_HOST_RATE_PER_SECOND with a
second's burst) is used up, gets nothing now; its callback waits a moment in
the database, not in a worker. So a hanging receiver holds at most its own
few slots, and every other receiver's callbacks go on. A slot left by a
worker that died ends with its hold (the POST's timeout, twice over).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import redis.asyncio as aioredis

from smsdispatch.vocabulary import keys

# KEYS: the host's in-flight set (token -> when its hold ends, Redis µs),
#       its rate TAT.
# ARGV: concurrency, interval_us, burst_us, hold_us, token.
# Returns 1 (go: the token holds a slot), 0 (host busy), -1 (rate used up).
# A slot whose holder died ends with its hold: no count can leak for good.
TAKE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
local interval = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[2]) or '0')
if tat < now then tat = now end
if tat + interval - now > tonumber(ARGV[3]) then return -1 end
redis.call('SET', KEYS[2], tat + interval, 'PX', math.ceil((tat + interval - now) / 1000) + 1000)
local hold = tonumber(ARGV[4])
redis.call('ZADD', KEYS[1], now + hold, ARGV[5])
redis.call('PEXPIRE', KEYS[1], math.ceil(hold / 1000) + 1000)
return 1
"""


def host_of(url: str) -> str:
    """The host a callback URL names, with its port: the unit of isolation."""
    parts = urlsplit(url)
    return (parts.netloc.rpartition("@")[2] or "none").lower()


class HostGate:
    def __init__(
        self,
        client: aioredis.Redis,
        *,
        concurrency: int,
        rate_per_second: float,
        hold_seconds: float,
    ) -> None:
        self.client = client
        self.concurrency = concurrency
        self.interval_us = int(1_000_000 / rate_per_second)
        # A second's worth of the rate may go at once.
        self.burst_us = max(self.interval_us, 1_000_000)
        self.hold_us = int(hold_seconds * 1_000_000)
        self._take = client.register_script(TAKE_LUA)

    async def take(self, host: str, token: str) -> int:
        """1: post now, `token` holding the slot (then `release`); 0: the host
        is busy; -1: its rate is used up."""
        args: list[int | str] = [
            self.concurrency,
            self.interval_us,
            self.burst_us,
            self.hold_us,
            token,
        ]
        keys_ = [keys.callback_inflight(host), keys.callback_rate(host)]
        return int(await self._take(keys=keys_, args=args))

    async def release(self, host: str, token: str) -> None:
        await self.client.zrem(keys.callback_inflight(host), token)
