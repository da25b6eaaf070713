"""Worker-side metrics: counted in the process, added to Redis once per batch.

Why not prometheus_client counters in the workers: workers are Celery
processes on each of many hosts, so in-process counters would be one
series per child process, reset whenever a child is replaced, and need a
scrape target per process. Instead each process keeps a small buffer for the
batch it is sending and adds it to two Redis hashes in one pipeline (one
round trip per batch, never per message) when the batch is persisted. The
collector (monitoring/collector.py) reads the hashes on scrape, so every
scrape sees the cluster-wide totals.

    smsdispatch:metrics:sends           "<provider>|<outcome>" -> count   (vendor calls only)
    smsdispatch:metrics:deferrals       "<provider>|<reason>"  -> count   (held by us, not sent)
    smsdispatch:metrics:limiter_waits   "<provider>|<bucket>"  -> count   (one field per bucket,
                                        "<provider>|sum"       -> seconds  not cumulative)
    smsdispatch:metrics:failovers       "<provider>|<to>"      -> count   (routed messages moved
                                                                          to another vendor)
    smsdispatch:metrics:recoveries      "<provider>|<how>"     -> count   (by the sweeper: how a
                                                                          dead worker's sends
                                                                          were recovered)

Outcomes are the `send_attempts.outcome` values, so the sends counter equals
the attempts table grouped by provider and outcome, less the `deferred`
attempts: those never reached the vendor (our own limiter or quiet hours held
them), and counted as sends they made `rate()` of sends several times the
real sending rate. They are counted apart, by reason (`send_attempts.code`:
`rate_limit` or `quiet_hours`). Field names hold only a vendor name and a
word from our own vocabulary: no number, text or secret can reach a label.

Counters are best-effort: a Redis error while flushing is logged and the
batch's counts are dropped (the database stays the record; Redis restarting
empty resets the counters, which Prometheus' rate() treats as a reset).
"""

from __future__ import annotations

import bisect
import logging
import threading
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import redis
import redis.asyncio as aioredis

from smsdispatch.vocabulary import keys

log = logging.getLogger(__name__)

# Upper bounds (seconds) of the limiter-wait histogram: a wait is at most
# LIMITER_MAX_WAIT_SECONDS (2 s by default) plus what an oversize request needs.
WAIT_BUCKETS: tuple[float, ...] = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)
INF = "+Inf"
# Why our side held a request back (the code of a `deferred` attempt); any
# other code is counted as "other", so a label never holds a free-form word.
DEFERRAL_REASONS = frozenset({"rate_limit", "quiet_hours"})


def bucket_label(bound: float) -> str:
    """The `le` label of a bucket, as Prometheus prints it."""
    return repr(float(bound))


def bucket_of(seconds: float) -> str:
    """The smallest bucket a wait fits in (waits are counted in one bucket only)."""
    index = bisect.bisect_left(WAIT_BUCKETS, seconds)
    return bucket_label(WAIT_BUCKETS[index]) if index < len(WAIT_BUCKETS) else INF


def field_name(provider: str, part: str) -> str:
    return f"{provider}|{part}"


@dataclass
class MetricsBuffer:
    """What one process counted since its last flush.

    The limiter gate observes waits into it (on the event loop) while
    batches are sent; each task adds its batch's outcomes and flushes (on its
    own thread). Several tasks run at once in a threaded worker, so the
    counts change hands under a lock.
    """

    sends: Counter[tuple[str, str]] = field(default_factory=Counter)
    deferrals: Counter[tuple[str, str]] = field(default_factory=Counter)
    failovers: Counter[tuple[str, str]] = field(default_factory=Counter)
    wait_buckets: Counter[tuple[str, str]] = field(default_factory=Counter)
    wait_sums: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def observe_wait(self, provider: str, seconds: float) -> None:
        """A request waited this long for its limiter slot (0 when it went at once)."""
        with self._lock:
            self.wait_buckets[provider, bucket_of(seconds)] += 1
            self.wait_sums[provider] += seconds

    def count_sends(self, calls: Iterable[tuple[str, str]]) -> None:
        """One (provider, outcome) per vendor call, as logged in send_attempts."""
        counted = Counter(calls)
        with self._lock:
            self.sends.update(counted)

    def count_deferrals(self, held: Iterable[tuple[str, str | None]]) -> None:
        """One (provider, reason) per request our own side held back before any
        vendor call (a `deferred` attempt and its code)."""
        counted = Counter(
            (provider, reason if reason in DEFERRAL_REASONS else "other")
            for provider, reason in held
        )
        with self._lock:
            self.deferrals.update(counted)

    def count_failovers(self, moves: Iterable[tuple[str, str]]) -> None:
        """One (from vendor, to vendor) per routed message moved (sending/failover.py)."""
        counted = Counter(moves)
        with self._lock:
            self.failovers.update(counted)

    def empty(self) -> bool:
        return not (self.sends or self.deferrals or self.failovers or self.wait_buckets)

    def flush(self, client: redis.Redis) -> None:
        """Add everything counted to Redis in one round trip, then forget it."""
        with self._lock:
            if self.empty():
                return
            sends, self.sends = self.sends, Counter()
            deferrals, self.deferrals = self.deferrals, Counter()
            failovers, self.failovers = self.failovers, Counter()
            buckets, self.wait_buckets = self.wait_buckets, Counter()
            sums, self.wait_sums = self.wait_sums, defaultdict(float)
        pipe = client.pipeline(transaction=False)
        for (provider, outcome), n in sends.items():
            pipe.hincrby(keys.METRICS_SENDS, field_name(provider, outcome), n)
        for (provider, reason), n in deferrals.items():
            pipe.hincrby(keys.METRICS_DEFERRALS, field_name(provider, reason), n)
        for (provider, to), n in failovers.items():
            pipe.hincrby(keys.METRICS_FAILOVERS, field_name(provider, to), n)
        for (provider, bucket), n in buckets.items():
            pipe.hincrby(keys.METRICS_LIMITER_WAITS, field_name(provider, bucket), n)
        for provider, seconds in sums.items():
            pipe.hincrbyfloat(keys.METRICS_LIMITER_WAITS, field_name(provider, "sum"), seconds)
        try:
            pipe.execute()
        except redis.RedisError:
            log.warning("could not add this batch's metrics to Redis", exc_info=True)


# Upper bounds (seconds) of the status-change-to-callback histogram.
CALLBACK_BUCKETS: tuple[float, ...] = (
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    3600.0,
)
CALLBACK_OUTCOMES = ("delivered", "retried", "failed")


def callback_bucket_of(seconds: float) -> str:
    index = bisect.bisect_left(CALLBACK_BUCKETS, seconds)
    return bucket_label(CALLBACK_BUCKETS[index]) if index < len(CALLBACK_BUCKETS) else INF


async def add_callback_metrics(
    client: aioredis.Redis, outcomes: Counter[str], latencies: Sequence[float]
) -> None:
    """Add a batch of status callbacks' outcomes and latencies (status change to
    2xx) to Redis in one round trip; best-effort like `MetricsBuffer.flush`.

        smsdispatch:metrics:callbacks         "<outcome>" -> count
        smsdispatch:metrics:callback_latency  "all|<le>" -> count, "all|sum" -> seconds
    """
    if not outcomes and not latencies:
        return
    pipe = client.pipeline(transaction=False)
    for outcome, n in outcomes.items():
        pipe.hincrby(keys.METRICS_CALLBACKS, outcome, n)
    buckets = Counter(callback_bucket_of(s) for s in latencies)
    for bucket, n in buckets.items():
        pipe.hincrby(keys.METRICS_CALLBACK_LATENCY, field_name("all", bucket), n)
    if latencies:
        pipe.hincrbyfloat(keys.METRICS_CALLBACK_LATENCY, field_name("all", "sum"), sum(latencies))
    try:
        await pipe.execute()
    except redis.RedisError:
        log.warning("could not add this batch's callback metrics to Redis", exc_info=True)


@dataclass(frozen=True)
class WaitHistogram:
    """One provider's limiter waits, cumulative as Prometheus wants them."""

    buckets: list[tuple[str, int]]  # (le, cumulative count), ending with +Inf
    total: float


def read_wait_histograms(
    raw: dict[bytes, bytes], bounds: Sequence[float] = WAIT_BUCKETS
) -> dict[str, WaitHistogram]:
    """Turn the limiter-wait hash (or another of its shape with these bucket
    `bounds`) into one cumulative histogram per provider."""
    per_bucket: dict[str, Counter[str]] = {}
    sums: dict[str, float] = {}
    for key, value in raw.items():
        provider, _, part = key.decode().partition("|")
        if part == "sum":
            sums[provider] = float(value)
        else:
            per_bucket.setdefault(provider, Counter())[part] = int(value)
    labels: Sequence[str] = [*(bucket_label(b) for b in bounds), INF]
    result = {}
    for provider, counts in per_bucket.items():
        running = 0
        cumulative = []
        for le in labels:
            running += counts.get(le, 0)
            cumulative.append((le, running))
        result[provider] = WaitHistogram(cumulative, sums.get(provider, 0.0))
    return result


def read_counts(raw: dict[bytes, bytes]) -> dict[tuple[str, str], int]:
    """A "<provider>|<word>" -> count hash (sends, deferrals, recoveries) as
    {(provider, word): count}."""
    result = {}
    for key, value in raw.items():
        provider, _, outcome = key.decode().partition("|")
        result[provider, outcome] = int(value)
    return result
