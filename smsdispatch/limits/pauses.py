"""Vendor pauses shared by every worker: one Redis key per vendor.

An account-level error (bad credentials, no credit, suspended account) pauses
the whole vendor: each worker that finds the key puts its claimed rows back to
wait until the pause ends, so nothing fails because of the account. The key's
value says why, who set it and since when (JSON, written with Redis TIME),
for operators (`smsdispatch vendor list`, `smsdispatch status`).

Who: `AUTOMATIC` for a pause a worker set from a vendor's answer; an
operator's pause (`smsdispatch vendor pause`, `POST /v1/vendors/{vendor}/pause`)
names its operator and may have no end (no TTL: until resumed). An automatic
pause never replaces one without an end, nor a longer one; an operator's
replaces whatever is there. Resuming deletes the key: every worker reads it
before each batch, so all of them send again from their next batch.

A code the vendor's document does not give may be such an account error too
(its document lists no "no balance"), or a trouble of one message: the same
undocumented code coming back for several distinct messages is what tells
them apart (`pause_if_undocumented_code_repeats`). Only a code whose answer's
HTTP status gives no class of its own counts: on a 5xx, a 429 or a refused
key the status decides, and a vendor's bad minute pauses nothing
(smsdispatch.providers.base `Adapter.http_status_decides`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import redis

from smsdispatch.config.catalog import RetryPolicy
from smsdispatch.vocabulary import keys
from smsdispatch.vocabulary.outcomes import Outcome, OutcomeKind

log = logging.getLogger(__name__)

# A vendor's code goes into a Redis key name: bounded, whatever it sent.
MAX_CODE_IN_KEY = 64


# The error code of a row a worker put back to wait for its vendor's pause:
# resuming the vendor makes these rows due at once.
HELD_CODE = "vendor_paused"

# Who set a pause a worker set on a vendor's answer.
AUTOMATIC = "automatic"


@dataclass(frozen=True, slots=True)
class Pause:
    provider: str
    until: datetime | None  # None: until an operator resumes the vendor
    reason: str
    by: str = AUTOMATIC
    since: datetime | None = None  # None: set by a version that did not record it

    @property
    def automatic(self) -> bool:
        return self.by == AUTOMATIC

    @property
    def until_text(self) -> str:
        return "until resumed" if self.until is None else f"until {self.until:%H:%M:%S}"


# The pause's value, built with the server's clock: who, why, since when.
_VALUE = """
local t = redis.call('TIME')
local since = tonumber(t[1]) + tonumber(t[2]) / 1000000
local value = cjson.encode({reason = ARGV[1], by = ARGV[2], since = since})
"""

# Set the pause unless one already lasts longer or has no end: a short
# throttle pause must not cut short a long account pause, nor replace an
# operator's pause that lasts until resumed.
_EXTEND = (
    """
local ttl = redis.call('PTTL', KEYS[1])
if ttl == -1 or ttl >= tonumber(ARGV[3]) then
  return 0
end
"""
    + _VALUE
    + """
redis.call('SET', KEYS[1], value, 'PX', ARGV[3])
return 1
"""
)

# An operator's pause replaces whatever is there; no TTL when ARGV[3] is 0.
_SET = (
    _VALUE
    + """
if tonumber(ARGV[3]) > 0 then
  redis.call('SET', KEYS[1], value, 'PX', ARGV[3])
else
  redis.call('SET', KEYS[1], value)
end
return 1
"""
)


def pause(client: redis.Redis, provider: str, seconds: float, reason: str) -> bool:
    """Pause the vendor for every worker; False if a longer pause was in force."""
    ms = max(1, int(seconds * 1000))
    return bool(client.eval(_EXTEND, 1, keys.pause(provider), reason, AUTOMATIC, ms))


def pause_by_operator(
    client: redis.Redis, provider: str, reason: str, by: str, seconds: float | None
) -> None:
    """An operator's pause, replacing any other; `seconds` None: until resumed."""
    ms = 0 if seconds is None else max(1, int(seconds * 1000))
    client.eval(_SET, 1, keys.pause(provider), reason, by, ms)


def count_throttle(client: redis.Redis, provider: str, remember_seconds: float) -> int:
    """One more throttle from this vendor; how many in a row (forgotten after a quiet spell)."""
    pipe = client.pipeline()
    pipe.incr(keys.throttles(provider))
    pipe.expire(keys.throttles(provider), max(1, int(remember_seconds)))
    streak, _ = pipe.execute()
    return int(streak)


def resume(client: redis.Redis, provider: str, now: datetime) -> Pause | None:
    """Lift the vendor's pause for every worker at once; the pause lifted, if any."""
    pipe = client.pipeline()
    pipe.pttl(keys.pause(provider))
    pipe.getdel(keys.pause(provider))
    ttl_ms, value = pipe.execute()
    return None if value is None else _read(provider, value, ttl_ms, now)


def current_pause(client: redis.Redis, provider: str, now: datetime) -> Pause | None:
    pipe = client.pipeline()
    pipe.get(keys.pause(provider))
    pipe.pttl(keys.pause(provider))
    value, ttl_ms = pipe.execute()
    if value is None or ttl_ms is None or ttl_ms == -2:
        return None
    return _read(provider, value, ttl_ms, now)


def redis_now(client: redis.Redis) -> datetime:
    """Redis's clock, the one pauses are written with."""
    seconds, micros = client.time()
    return datetime.fromtimestamp(seconds + micros / 1_000_000, UTC)


def _read(provider: str, value: bytes, ttl_ms: int, now: datetime) -> Pause:
    until = None if ttl_ms < 0 else now + timedelta(milliseconds=ttl_ms)
    text = value.decode()
    try:
        fields = json.loads(text)
    except ValueError:
        fields = None
    if not isinstance(fields, dict):  # written as the bare reason before pauses said who
        return Pause(provider, until, text)
    since = fields.get("since")
    return Pause(
        provider,
        until,
        str(fields.get("reason", "")),
        str(fields.get("by", AUTOMATIC)),
        None if since is None else datetime.fromtimestamp(float(since), UTC),
    )


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
