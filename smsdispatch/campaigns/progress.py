"""What `campaign watch` says about a campaign in flight, as pure functions.

A campaign is `completed` once every message has been *sent* (or failed,
or expired at the end time); their delivery reports come later, minutes
later for a polled vendor. So the watch tells the two apart: "sending",
then "sent; N awaiting reports", then "all final". It names statuses as
the rest of the product does (vocabulary/status.py: an undelivered
message is `undelivered`, not "failed"), and its rate is over a sliding
window: sends leave in bursts as the limiter and the workers' batches
allow, so the change between two refreshes swings between a burst and
nothing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from smsdispatch.vocabulary.status import (
    FINAL,
    SETTLED,
    UNSENT,
    CampaignStatus,
    MessageStatus,
)

# Statuses in the order a message moves through them, as the product names them.
SHOWN = tuple(s for s in MessageStatus if s in SETTLED)
# The campaign releases no more messages in these.
ENDED = frozenset({CampaignStatus.COMPLETED, CampaignStatus.CANCELLED})


def sent_count(counts: Mapping[str, int]) -> int:
    """Messages the campaign is done sending: everything but held, queued, sending."""
    return sum(n for s, n in counts.items() if s not in UNSENT)


def awaiting_reports(counts: Mapping[str, int]) -> int:
    """Sent, but without a final status yet: accepted (or unknown) at the vendor."""
    return sum(n for s, n in counts.items() if s not in UNSENT and s not in FINAL)


def all_final(counts: Mapping[str, int]) -> bool:
    return all(s in FINAL for s, n in counts.items() if n)


def status_line(counts: Mapping[str, int]) -> str:
    """'accepted 12 · delivered 280 · undelivered 4' (statuses with messages only)."""
    parts = [f"{s.value} {counts[s]}" for s in SHOWN if counts.get(s)]
    return " · ".join(parts) or "nothing sent yet"


def phase(campaign_status: str, counts: Mapping[str, int]) -> str:
    """Where the campaign is, in words an operator acts on."""
    if campaign_status not in ENDED:
        return str(campaign_status)
    waiting = awaiting_reports(counts)
    if waiting:
        return f"{campaign_status}: sent, {waiting} awaiting reports"
    return f"{campaign_status}: all final"


def finished(campaign_status: str, counts: Mapping[str, int]) -> bool:
    """Nothing more will change on its own: ended, and every message final."""
    return campaign_status in ENDED and all_final(counts)


@dataclass
class SlidingRate:
    """Messages per second over the last `window` seconds of samples."""

    window: float = 10.0
    samples: deque[tuple[float, int]] = field(default_factory=deque)

    def add(self, at: float, done: int) -> float:
        """Record `done` messages sent by time `at` (seconds); the rate now."""
        self.samples.append((at, done))
        # Keep one sample at or before the window's start, so the window is full.
        while len(self.samples) > 2 and self.samples[1][0] <= at - self.window:
            self.samples.popleft()
        (first_at, first), (last_at, last) = self.samples[0], self.samples[-1]
        return (last - first) / (last_at - first_at) if last_at > first_at else 0.0
