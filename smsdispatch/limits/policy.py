"""What a ceiling means to the limiter: an emission interval and a burst (GCRA).

Why the interval is not simply per_seconds / count: GCRA with burst B lets
fewer than `B + W/I + 1` messages into any window of length W. For "at most C
per W" to hold in *every* sliding window at the vendor, whose clock sees our
messages up to J seconds unevenly delayed, I = (W + J) / (C + 1 - B). With
J = 50 ms: SMSBuddy (1000/60 s, burst 10) runs at 990 a minute, a long code
(1/s) at one message every 1.05 s.

Every message of burst the limiter keeps in hand costs one slot of steady
rate in every window, so the limiter keeps only the burst its largest
request needs (`ProviderEntry.request_size`), never more than the catalog
allows: Cue (100/s, burst 10) sends one message per request and runs at 95
a second with burst 1, where the full burst would hold it to 87. Bulk
sending loses nothing by it; after a pause the first ten go 10 ms apart
rather than at once. Every window holds the ceiling while the delay to the
vendor varies by less than J; the burst left unused is the margin beyond
that: a second that lags more (a saturated host, a vendor clock that
stalls) reaches at most the ceiling plus the catalog's burst.

A vendor that counts segments gets the catalog's whole burst: a request of
several long texts is more tokens than messages.
"""

from __future__ import annotations

from dataclasses import dataclass

from smsdispatch.config.catalog import ProviderEntry, RateLimit
from smsdispatch.vocabulary import keys


@dataclass(frozen=True, slots=True)
class Limit:
    """One ceiling, as GCRA sees it: a key, an emission interval, a burst."""

    key: str
    interval: float  # seconds between tokens at the steady rate
    burst: int

    @classmethod
    def from_rate(
        cls, key: str, rate: RateLimit, jitter: float = 0.05, burst: int | None = None
    ) -> Limit:
        """The interval that keeps every sliding window of `per_seconds` at or
        below `count` *at the vendor*, whatever the burst (module docstring).

        `jitter` is the most the delay from our grant to the vendor's clock
        can vary between two messages: a vendor window of W seconds is at
        most W + jitter seconds of our grants. `burst` is what the limiter
        keeps in hand (the catalog's, if not given; never more).
        """
        if rate.count + 1 - rate.burst < 1:
            raise ValueError(f"{key}: burst {rate.burst} leaves no room under {rate.count}")
        used = rate.burst if burst is None else max(1, min(burst, rate.burst))
        return cls(key, (rate.per_seconds + jitter) / (rate.count + 1 - used), used)

    @property
    def per_minute(self) -> float:
        return 60.0 / self.interval


def account_limit(entry: ProviderEntry, jitter: float) -> Limit | None:
    """The vendor account's ceiling, with the burst its largest request needs."""
    if entry.account_limit is None:
        return None
    burst = None if entry.counts_segments else entry.request_size
    return Limit.from_rate(keys.rate_account(entry.name), entry.account_limit, jitter, burst=burst)


def sender_limit(entry: ProviderEntry, sender: str, jitter: float) -> Limit | None:
    """One sender's ceiling (by its kind), with the burst its requests need."""
    rate = entry.sender_limits.get(entry.kind_of(sender))
    if rate is None:
        return None
    burst = None if entry.counts_segments else entry.request_size_for(sender)
    return Limit.from_rate(keys.rate_sender(entry.name, sender), rate, jitter, burst=burst)
