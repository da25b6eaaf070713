"""Vendor pauses shared by every worker: one Redis key per vendor.

An account-level error (bad credentials, no credit, suspended account) pauses
the whole vendor: each worker that finds the key puts its claimed rows back to
wait until the pause ends, so nothing fails because of the account. The key's
value is the reason, for operators (`smsdispatch status`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import redis

from workers import keys


@dataclass(frozen=True, slots=True)
class Pause:
    provider: str
    until: datetime
    reason: str


# Set the pause unless one already lasts longer: a short throttle pause must
# not cut short a long account pause.
_EXTEND = """
local ttl = redis.call('PTTL', KEYS[1])
if ttl < tonumber(ARGV[2]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""


def pause(client: redis.Redis, provider: str, seconds: float, reason: str) -> bool:
    """Pause the vendor for every worker; False if a longer pause was in force."""
    ms = max(1, int(seconds * 1000))
    return bool(client.eval(_EXTEND, 1, keys.pause(provider), reason.encode(), ms))


def count_throttle(client: redis.Redis, provider: str, remember_seconds: float) -> int:
    """One more throttle from this vendor; how many in a row (forgotten after a quiet spell)."""
    pipe = client.pipeline()
    pipe.incr(keys.throttles(provider))
    pipe.expire(keys.throttles(provider), max(1, int(remember_seconds)))
    streak, _ = pipe.execute()
    return int(streak)


def resume(client: redis.Redis, provider: str) -> None:
    client.delete(keys.pause(provider))


def current_pause(client: redis.Redis, provider: str, now: datetime) -> Pause | None:
    pipe = client.pipeline()
    pipe.get(keys.pause(provider))
    pipe.pttl(keys.pause(provider))
    reason, ttl_ms = pipe.execute()
    if reason is None or ttl_ms is None or ttl_ms < 0:
        return None
    return Pause(provider, now + timedelta(milliseconds=ttl_ms), reason.decode())
