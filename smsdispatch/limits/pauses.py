"""Vendor pauses shared by every worker: one Redis key per vendor.

An account-level error (bad credentials, no credit, suspended account) pauses
the whole vendor: each worker that finds the key puts its claimed rows back to
wait until the pause ends, so nothing fails because of the account. The key's
value is the reason, for operators (`smsdispatch status`).

A code the vendor's document does not give may be such an account error too
(its document lists no "no balance"), or a trouble of one message: the same
undocumented code coming back for several distinct messages is what tells
them apart (`pause_if_undocumented_code_repeats`). Only a code whose answer's
HTTP status gives no class of its own counts: on a 5xx, a 429 or a refused
key the status decides, and a vendor's bad minute pauses nothing
(smsdispatch.providers.base `Adapter.http_status_decides`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis

from smsdispatch.config.catalog import RetryPolicy
from smsdispatch.vocabulary import keys
from smsdispatch.vocabulary.outcomes import Outcome, OutcomeKind

log = logging.getLogger(__name__)

# A vendor's code goes into a Redis key name: bounded, whatever it sent.
MAX_CODE_IN_KEY = 64


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


def count_undocumented(
    client: redis.Redis, provider: str, outcomes: Sequence[Outcome], window_seconds: float
) -> dict[str, tuple[int, Outcome]]:
    """Record which messages got each undocumented code being retried; for each
    such code in `outcomes`, how many distinct messages got it within the
    window, and one of its outcomes (for the vendor's words).

    One set of message ids per vendor and code, forgotten `window_seconds`
    after its first member (a fixed window: the expiry is set only when the
    set is created), so one message retried many times counts once. One
    round trip for the whole batch.
    """
    seen: dict[str, tuple[set[int], Outcome]] = {}
    for outcome in outcomes:
        if not outcome.undocumented or outcome.kind is not OutcomeKind.RETRY:
            continue
        if outcome.message_id is None:
            continue
        code = (outcome.code or "none")[:MAX_CODE_IN_KEY]
        seen.setdefault(code, (set(), outcome))[0].add(outcome.message_id)
    if not seen:
        return {}
    window_ms = max(1, int(window_seconds * 1000))
    pipe = client.pipeline(transaction=False)
    for code, (ids, _) in seen.items():
        key = keys.undocumented(provider, code)
        pipe.sadd(key, *ids)
        pipe.pexpire(key, window_ms, nx=True)
        pipe.scard(key)
    replies = pipe.execute()
    counts = replies[2::3]
    return {
        code: (int(count), outcome)
        for (code, (_, outcome)), count in zip(seen.items(), counts, strict=True)
    }


def pause_if_undocumented_code_repeats(
    client: redis.Redis, provider: str, outcomes: Sequence[Outcome], policy: RetryPolicy
) -> str | None:
    """Pause the vendor for every worker when one undocumented code has come
    back for `policy.undocumented_pause_after` distinct messages within
    `policy.undocumented_window_seconds`; the reason (returned) is the
    vendor's code and words."""
    counts = count_undocumented(client, provider, outcomes, policy.undocumented_window_seconds)
    repeated = [
        (count, outcome)
        for count, outcome in counts.values()
        if count >= policy.undocumented_pause_after
    ]
    if not repeated:
        return None
    count, outcome = max(repeated, key=lambda found: found[0])
    reason = (
        f"{outcome.reason} (for {count} messages within "
        f"{policy.undocumented_window_seconds:g}s; classify it in the catalog's "
        "code_overrides once its meaning is known)"
    )
    pause(client, provider, policy.pause_seconds, reason)
    log.warning("paused %s for %.0fs: %s", provider, policy.pause_seconds, reason)
    return reason
