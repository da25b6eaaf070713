"""Each vendor's delivery figures, from its final delivery reports, shared by every worker.

The health the breaker reads (routing/health.py) is whether a vendor takes
our messages; this is whether it delivers them, and how fast. Whoever applies
delivery reports and status-query answers (reports/intake.py,
reports/reconcile.py) counts, after its commit, each message a report moved
to a final status (store/reports.py `Final`: the UPDATE that moves it is the
only one that returns it, so a repeated report counts once). Counts go to
one Redis hash per vendor per `bucket_seconds` of Redis time, in one round
trip per applied batch, and expire when no window can reach them:

    delivered, not_delivered         final reports by class
    le5 le10 ... le600, gt600        delivered messages by time to delivery
                                     (config/routes.py DELIVERY_EDGES)

Counting is best effort: a report is applied and answered whether or not
Redis takes its count (a warning is logged); the figures are then a little
short, never wrong about what was counted.

A window's figures (`DeliveryBoard.figures`, one round trip for all vendors)
give the delivered share of final reports, the share delivered within 60,
300 and 600 seconds (of final reports: an undelivered message was not
delivered within anything), the share delivered later than the catalog's
`slow_after_seconds` (the weights step a vendor down on it), and a typical
time to delivery: the median of the delivered, interpolated within its
class. A vendor with fewer than `min_reports` has no figures (None), so a
quiet vendor is neither best nor worst.

Keys are built inside the scripts from the vendors' prefixes (as in
routing/health.py): this needs one Redis, not a cluster.

Figures count reports by when they came, not messages by when they were sent:
a message with no final report yet is in none of them (that share needs the
database, which knows what is still waiting).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import redis

from smsdispatch.config.routes import DELIVERY_EDGES, DeliveryPolicy
from smsdispatch.routing.health import text_of
from smsdispatch.store.reports import Final
from smsdispatch.vocabulary import keys

log = logging.getLogger(__name__)

DELIVERED = "delivered"
NOT_DELIVERED = "not_delivered"
LATER = f"gt{DELIVERY_EDGES[-1]}"
TIME_CLASSES = (*(f"le{edge}" for edge in DELIVERY_EDGES), LATER)
FIELDS = (DELIVERED, NOT_DELIVERED, *TIME_CLASSES)


def time_class(seconds: float) -> str:
    """The field a delivery that took `seconds` is counted in."""
    return next((f"le{edge}" for edge in DELIVERY_EDGES if seconds <= edge), LATER)


# ARGV: bucket_s, keep_s, then prefix/field/count triples. One bucket (the
# current one on Redis' clock) per call, whatever hosts' clocks say.
_RECORD = """
local t = redis.call('TIME')
local bucket = math.floor(tonumber(t[1]) / tonumber(ARGV[1]))
local keep = tonumber(ARGV[2])
for i = 3, #ARGV, 3 do
  local key = ARGV[i] .. bucket
  redis.call('HINCRBY', key, ARGV[i + 1], ARGV[i + 2])
  redis.call('EXPIRE', key, keep)
end
return bucket
"""

# ARGV: bucket_s, window_s, the number of fields, the fields, then the
# vendors' prefixes. Returns per prefix the window's sum of each field.
_READ = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local size = tonumber(ARGV[1])
local last = math.floor(now / size)
local first = math.floor((now - tonumber(ARGV[2])) / size)
local n = tonumber(ARGV[3])
local fields = {}
for i = 1, n do fields[i] = ARGV[3 + i] end
local out = {}
for p = 4 + n, #ARGV do
  local sums = {}
  for i = 1, n do sums[i] = 0 end
  for b = first, last do
    local v = redis.call('HMGET', ARGV[p] .. b, unpack(fields))
    for i = 1, n do sums[i] = sums[i] + tonumber(v[i] or '0') end
  end
  out[#out + 1] = sums
end
return out
"""


@dataclass(frozen=True, slots=True)
class DeliveryFigures:
    """One vendor's final reports over a window; a figure is None below `min_reports`."""

    counts: Mapping[str, int]
    min_reports: int

    @property
    def reports(self) -> int:
        return self.counts.get(DELIVERED, 0) + self.counts.get(NOT_DELIVERED, 0)

    @property
    def timed(self) -> int:
        """Delivered messages counted by their time to delivery."""
        return sum(self.counts.get(field, 0) for field in TIME_CLASSES)

    @property
    def delivered_share(self) -> float | None:
        """Of final reports, the share that said delivered."""
        return self._of_reports(self.counts.get(DELIVERED, 0))

    def within_share(self, seconds: int) -> float | None:
        """Of final reports, the share delivered within `seconds` (a class edge)."""
        return self._of_reports(self._within(seconds))

    def slow_share(self, after_seconds: int) -> float | None:
        """Of final reports, the share delivered later than `after_seconds` (a class edge)."""
        return self._of_reports(self.timed - self._within(after_seconds))

    def _within(self, seconds: int) -> int:
        if seconds not in DELIVERY_EDGES:
            raise ValueError(f"{seconds}s is not one of {list(DELIVERY_EDGES)}")
        return sum(self.counts.get(f"le{e}", 0) for e in DELIVERY_EDGES if e <= seconds)

    @property
    def typical_seconds(self) -> float | None:
        """The median time to delivery, interpolated within its class; past the
        last class, the last edge (a lower bound). None below `min_reports`."""
        total = self.timed
        if total < self.min_reports:
            return None
        half, below, low = total / 2, 0, 0.0
        for edge in DELIVERY_EDGES:
            n = self.counts.get(f"le{edge}", 0)
            if n and below + n >= half:
                return low + (edge - low) * (half - below) / n
            below, low = below + n, float(edge)
        return float(DELIVERY_EDGES[-1])

    def _of_reports(self, count: int) -> float | None:
        reports = self.reports
        return count / reports if reports >= self.min_reports and reports else None


class DeliveryBoard:
    """Counts final reports per vendor, and reads a window of them, in Redis."""

    def __init__(self, client: redis.Redis, policy: DeliveryPolicy) -> None:
        self.client = client
        self.policy = policy
        self._record = client.register_script(_RECORD)
        self._read = client.register_script(_READ)

    def record(self, finals: Iterable[Final]) -> bool:
        """Count the messages reports moved to a final status (after their
        commit), in one round trip. Best effort: False, and a warning, if
        Redis would not take them; never raises for Redis."""
        counts: dict[tuple[str, str], int] = {}
        for final in finals:
            fields = [DELIVERED if final.delivered else NOT_DELIVERED]
            if final.delivered and final.seconds is not None:
                fields.append(time_class(final.seconds))
            for field in fields:
                counts[final.provider, field] = counts.get((final.provider, field), 0) + 1
        if not counts:
            return True
        triples = [
            x
            for (vendor, field), n in counts.items()
            for x in (keys.delivery_prefix(vendor), field, n)
        ]
        try:
            self._record(args=[self.policy.bucket_seconds, self.policy.keep_seconds, *triples])
        except redis.RedisError as exc:
            log.warning(
                "delivery figures not counted for %d final reports: Redis unavailable (%s)",
                sum(n for (_, field), n in counts.items() if field in (DELIVERED, NOT_DELIVERED)),
                type(exc).__name__,
            )
            return False
        return True

    def figures(
        self, vendors: Iterable[str], window_seconds: float | None = None
    ) -> dict[str, DeliveryFigures]:
        """Each vendor's figures over the window (the policy's), in one round trip."""
        names = list(dict.fromkeys(vendors))
        if not names:
            return {}
        sums = self._read(
            args=[
                self.policy.bucket_seconds,
                window_seconds or self.policy.window_seconds,
                len(FIELDS),
                *FIELDS,
                *(keys.delivery_prefix(v) for v in names),
            ]
        )
        return {
            vendor: DeliveryFigures(
                {f: int(text_of(n)) for f, n in zip(FIELDS, values, strict=True)},
                self.policy.min_reports,
            )
            for vendor, values in zip(names, sums, strict=True)
        }
