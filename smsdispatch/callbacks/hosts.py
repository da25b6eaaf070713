"""Per receiving host, across every worker: how many callbacks in flight, how fast.

One Lua script decides on Redis' clock: a host with CALLBACK_HOST_CONCURRENCY
posts in flight, or whose rate (GCRA, CALLBACK_HOST_RATE_PER_SECOND with a
second's burst) is used up, gets nothing now; its callback waits a moment in
the database, not in a worker. So a hanging receiver holds at most its own
few slots, and every other receiver's callbacks go on. A slot left by a
worker that died expires with the key (the POST's timeout, twice over).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import redis.asyncio as aioredis

from smsdispatch.vocabulary import keys

# KEYS: in-flight counter, rate TAT. ARGV: concurrency, interval_us, burst_us, ttl_ms.
# Returns 1 (go), 0 (host busy), -1 (host's rate used up).
TAKE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= tonumber(ARGV[1]) then return 0 end
local interval = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[2]) or '0')
if tat < now then tat = now end
if tat + interval - now > tonumber(ARGV[3]) then return -1 end
redis.call('SET', KEYS[2], tat + interval, 'PX', math.ceil((tat + interval - now) / 1000) + 1000)
redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]))
return 1
"""

RELEASE_LUA = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 0 then redis.call('DECR', KEYS[1]) end
return 0
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
        self.hold_ms = int(hold_seconds * 1000)
        self._take = client.register_script(TAKE_LUA)
        self._release = client.register_script(RELEASE_LUA)

    async def take(self, host: str) -> int:
        """1: post now (then `release`); 0: the host is busy; -1: its rate is used up."""
        args = [self.concurrency, self.interval_us, self.burst_us, self.hold_ms]
        keys_ = [keys.callback_inflight(host), keys.callback_rate(host)]
        return int(await self._take(keys=keys_, args=args))

    async def release(self, host: str) -> None:
        await self._release(keys=[keys.callback_inflight(host)], args=[])
