"""What a ceiling means to the limiter: an emission interval and a burst (GCRA).

Why the interval is not simply per_seconds / count: GCRA with burst B lets
fewer than `B + W/I + 1` messages into any window of length W. For "at most C
per W" to hold in *every* sliding window at the vendor, whose clock sees our
messages up to J seconds unevenly delayed, I = (W + J) / (C + 1 - B). With
J = 50 ms: SMSBuddy (1000/60 s, burst 10) runs at 990 a minute, a long code
(1/s) at one message every 1.05 s.
"""

from __future__ import annotations

from dataclasses import dataclass

from smsdispatch.config.catalog import RateLimit


@dataclass(frozen=True, slots=True)
class Limit:
    """One ceiling, as GCRA sees it: a key, an emission interval, a burst."""

    key: str
    interval: float  # seconds between tokens at the steady rate
    burst: int

    @classmethod
    def from_rate(cls, key: str, rate: RateLimit, jitter: float = 0.05) -> Limit:
        """The interval that keeps every sliding window of `per_seconds` at or
        below `count` *at the vendor*, whatever the burst (module docstring).

        `jitter` is the most the delay from our grant to the vendor's clock
        can vary between two messages: a vendor window of W seconds is at
        most W + jitter seconds of our grants.
        """
        slots = rate.count + 1 - rate.burst
        if slots < 1:
            raise ValueError(f"{key}: burst {rate.burst} leaves no room under {rate.count}")
        return cls(key, (rate.per_seconds + jitter) / slots, rate.burst)

    @property
    def per_minute(self) -> float:
        return 60.0 / self.interval
