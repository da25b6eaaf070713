"""Each vendor's health, shared by every worker: sliding windows and a breaker in Redis.

Every answer a worker gets says something about the vendor: it took the
message, it failed (a 5xx, a refused connection, an account error), it timed
out after the request left, or it throttled us. A recipient's own error, our
own limiter and a vendor's opening hours say nothing about its health and are
not counted. Counts go to one Redis hash per vendor per `bucket_seconds` of
Redis time (so hosts' clocks do not matter), which expires when no window
can reach it any more; a window is the sum of its buckets.

The circuit breaker is decided in the same script as the counting, so every
worker sees one state: closed until the failures in the breaker's window
reach `failure_ratio` of at least `min_volume` answers; then open (routed
messages go to the route's other vendors) for `cooldown_seconds`; then half
open: one probe message per `probe_interval_seconds` may go, a failure opens
it again, `probes_to_close` successes close it. Answers from before the
breaker last closed do not count towards opening it again (the counts of the
bucket it closed in are kept as a baseline and subtracted).

Keys are built inside the script from the vendor's prefix: this needs one
Redis (not a cluster), as the rest of smsdispatch does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

import redis

from smsdispatch.config.routes import BreakerPolicy
from smsdispatch.limits import pauses
from smsdispatch.vocabulary import keys
from smsdispatch.vocabulary.outcomes import OutcomeKind


class Signal(StrEnum):
    """What one answer says about the vendor (not about the message)."""

    OK = "ok"
    ERROR = "error"
    TIMEOUT = "timeout"
    THROTTLE = "throttle"


_SIGNALS = {
    OutcomeKind.ACCEPTED: Signal.OK,
    OutcomeKind.RETRY: Signal.ERROR,
    OutcomeKind.ACCOUNT: Signal.ERROR,
    OutcomeKind.AMBIGUOUS: Signal.TIMEOUT,
    OutcomeKind.RATE_LIMITED: Signal.THROTTLE,
}


def signal_of(kind: OutcomeKind) -> Signal | None:
    """The health signal of an outcome; None for those that say nothing of the
    vendor (a recipient's permanent error, our limiter, opening hours)."""
    return _SIGNALS.get(kind)


# Bucket fields beside the signals: answer milliseconds summed, and how many.
ANSWER_MS = "ms"
TIMED = "timed"


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


# Shared by both scripts: Redis time in seconds, and the breaker's state as
# of now (an open breaker whose cooldown has passed is half open).
_PRELUDE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local breaker = KEYS[1]
local function current_state(cooldown)
  local state = redis.call('HGET', breaker, 'state') or 'closed'
  if state == 'open' then
    local since = tonumber(redis.call('HGET', breaker, 'since'))
    if now >= since + cooldown then
      redis.call('HSET', breaker, 'state', 'half_open', 'since', now, 'probes_ok', 0,
                 'reason', 'cooldown over: probing')
      return 'half_open'
    end
  end
  return state
end
"""

# KEYS: breaker hash. ARGV: bucket prefix, bucket_s, keep_s, window_s,
# min_volume, failure_ratio, cooldown_s, probes_to_close, then field/count pairs.
# Returns the breaker's state after the answers.
_RECORD = (
    _PRELUDE
    + """
local prefix = ARGV[1]
local bucket_s = tonumber(ARGV[2])
local bucket = math.floor(now / bucket_s)
local key = prefix .. bucket
local added = {}
for i = 9, #ARGV, 2 do
  redis.call('HINCRBY', key, ARGV[i], ARGV[i + 1])
  added[ARGV[i]] = (added[ARGV[i]] or 0) + tonumber(ARGV[i + 1])
end
redis.call('EXPIRE', key, tonumber(ARGV[3]))

local window_s = tonumber(ARGV[4])
local min_volume = tonumber(ARGV[5])
local ratio = tonumber(ARGV[6])
local cooldown = tonumber(ARGV[7])
local probes_to_close = tonumber(ARGV[8])
local bad = (added['error'] or 0) + (added['timeout'] or 0)
local state = current_state(cooldown)

local function open(reason)
  redis.call('HSET', breaker, 'state', 'open', 'since', now, 'reason', reason)
  return 'open'
end

if state == 'half_open' then
  if bad > 0 then return open('a probe failed') end
  local ok = redis.call('HINCRBY', breaker, 'probes_ok', added['ok'] or 0)
  if ok >= probes_to_close then
    -- What the current bucket held when it closed does not count again.
    local v = redis.call('HMGET', key, 'ok', 'error', 'timeout')
    redis.call('HSET', breaker, 'state', 'closed', 'since', now, 'reason', 'probes succeeded',
               'base_bucket', bucket, 'base_ok', tonumber(v[1] or '0'),
               'base_bad', tonumber(v[2] or '0') + tonumber(v[3] or '0'))
    return 'closed'
  end
  return state
end
if state ~= 'closed' or bad == 0 then return state end

-- Closed and failures came: count the window, from the last close on.
local base = redis.call('HMGET', breaker, 'base_bucket', 'base_ok', 'base_bad')
local first = math.floor((now - window_s) / bucket_s)
local base_bucket = tonumber(base[1] or '-1')
if base_bucket > first then first = base_bucket end
local volume, failures = 0, 0
for b = first, bucket do
  local v = redis.call('HMGET', prefix .. b, 'ok', 'error', 'timeout')
  local ok, e = tonumber(v[1] or '0'), tonumber(v[2] or '0') + tonumber(v[3] or '0')
  if b == base_bucket then
    ok, e = ok - tonumber(base[2]), e - tonumber(base[3])
  end
  failures = failures + e
  volume = volume + ok + e
end
if volume >= min_volume and failures >= ratio * volume then
  return open(string.format('%d of %d answers failed in %ds', failures, volume, window_s))
end
return state
"""
)

# KEYS: breaker hash, probe key. ARGV: cooldown_s, probe_interval_ms.
# Returns {state, 1 if a message may go now else 0}.
_ADMIT = (
    _PRELUDE
    + """
local state = current_state(tonumber(ARGV[1]))
if state == 'closed' then return {state, 1} end
if state == 'open' then return {state, 0} end
if redis.call('SET', KEYS[2], 1, 'NX', 'PX', ARGV[2]) then return {state, 1} end
return {state, 0}
"""
)


@dataclass(frozen=True, slots=True)
class Breaker:
    state: BreakerState
    since: float | None  # Redis time, seconds
    reason: str


@dataclass(frozen=True, slots=True)
class Health:
    """One vendor's answers over a window."""

    ok: int
    errors: int
    timeouts: int
    throttles: int
    answer_ms: int = 0  # the answers' times, summed
    timed: int = 0  # answers with a time (a timeout has none)

    @property
    def answers(self) -> int:
        return self.ok + self.errors + self.timeouts

    @property
    def answer_seconds(self) -> float | None:
        """The mean time the vendor took to answer; None without an answer."""
        return self.answer_ms / 1000 / self.timed if self.timed else None

    @property
    def failure_share(self) -> float:
        return (self.errors + self.timeouts) / self.answers if self.answers else 0.0


class HealthBoard:
    """Records answers and reads health and breakers, for every vendor, in Redis."""

    def __init__(self, client: redis.Redis, policy: BreakerPolicy) -> None:
        self.client = client
        self.policy = policy
        self._record = client.register_script(_RECORD)
        self._admit = client.register_script(_ADMIT)

    def record(
        self, vendor: str, kinds: Iterable[OutcomeKind], seconds: Iterable[float] = ()
    ) -> BreakerState | None:
        """Count one batch of a vendor's answers, and how long each answer took
        (`seconds`, of the answers that came); the breaker's state after them
        (None when none of them says anything of the vendor)."""
        counts: dict[str, int] = {}
        for kind in kinds:
            signal = signal_of(kind)
            if signal is not None:
                counts[signal.value] = counts.get(signal.value, 0) + 1
        timed = list(seconds)
        if timed:
            # Integers, for HINCRBY: milliseconds summed, and how many.
            counts[ANSWER_MS] = round(sum(timed) * 1000)
            counts[TIMED] = len(timed)
        return self.record_counts(vendor, counts)

    def record_counts(self, vendor: str, counts: Mapping[str, int]) -> BreakerState | None:
        """Count a vendor's answers; the breaker's state after them, or None
        when nothing counted (no round trip to Redis)."""
        p = self.policy
        pairs = [x for field, n in counts.items() if n for x in (field, n)]
        if not pairs:
            return None
        state = self._record(
            keys=[keys.breaker(vendor)],
            args=[
                keys.health_prefix(vendor),
                p.bucket_seconds,
                int(p.keep_seconds),
                p.window_seconds,
                p.min_volume,
                p.failure_ratio,
                p.cooldown_seconds,
                p.probes_to_close,
                *pairs,
            ],
        )
        return BreakerState(text_of(state))

    def admit(self, vendor: str) -> tuple[BreakerState, bool]:
        """The breaker's state, and whether a message may go to the vendor now:
        always when closed, never when open, one probe per interval when half open."""
        state, allowed = self._admit(
            keys=[keys.breaker(vendor), keys.breaker_probe(vendor)],
            args=[self.policy.cooldown_seconds, int(self.policy.probe_interval_seconds * 1000)],
        )
        return BreakerState(text_of(state)), bool(allowed)

    def breaker(self, vendor: str) -> Breaker:
        """The breaker as of now, on Redis' clock: an open one whose cooldown
        has passed reads as half open (without writing: the next answer or
        probe request moves it on), so nothing that reads it waits for
        traffic that only a half-open breaker would let through."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(keys.breaker(vendor))
        pipe.time()
        stored, (seconds, micros) = pipe.execute()
        fields = {text_of(k): text_of(v) for k, v in stored.items()}
        state = BreakerState(fields.get("state", BreakerState.CLOSED.value))
        since = float(fields["since"]) if "since" in fields else None
        reason = fields.get("reason", "")
        cooled = (
            since is not None and seconds + micros / 1e6 >= since + self.policy.cooldown_seconds
        )
        if state is BreakerState.OPEN and cooled:
            return Breaker(BreakerState.HALF_OPEN, since, f"cooldown over after: {reason}")
        return Breaker(state, since, reason)

    def health(self, vendor: str, window_seconds: float | None = None) -> Health:
        """The vendor's answers over the last `window_seconds` (the breaker's window)."""
        window = window_seconds or self.policy.window_seconds
        now = pauses.redis_now(self.client).timestamp()
        size = self.policy.bucket_seconds
        first, last = int((now - window) // size), int(now // size)
        prefix = keys.health_prefix(vendor)
        pipe = self.client.pipeline()
        fields = [*(s.value for s in Signal), ANSWER_MS, TIMED]
        for bucket in range(first, last + 1):
            pipe.hmget(f"{prefix}{bucket}", fields)
        totals = dict.fromkeys(fields, 0)
        for values in pipe.execute():
            for name, value in zip(fields, values, strict=True):
                totals[name] += int(value or 0)
        return Health(
            totals[Signal.OK.value],
            totals[Signal.ERROR.value],
            totals[Signal.TIMEOUT.value],
            totals[Signal.THROTTLE.value],
            answer_ms=totals[ANSWER_MS],
            timed=totals[TIMED],
        )


def text_of(value: object) -> str:
    """A Redis reply as text (clients may or may not decode)."""
    return value.decode() if isinstance(value, bytes) else str(value)
