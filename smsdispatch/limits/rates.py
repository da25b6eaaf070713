"""The pace the catalog's limits allow: what the campaign dispatcher releases at.

The limiter (gcra.py) enforces a ceiling request by request; these say
how many messages a second a vendor, or one of its senders, can take, so
that the dispatcher keeps only a few seconds of them in Redis (invariant 4).
"""

from __future__ import annotations

import math

from smsdispatch.config.catalog import ProviderEntry

# A vendor with no account limit in the catalog: release as if it took this
# many a second (a fast vendor; the backlog is then a few thousand messages).
UNLIMITED_RATE = 1000.0


def vendor_rate(entry: ProviderEntry) -> float:
    limit = entry.account_limit
    return limit.count / limit.per_seconds if limit is not None else UNLIMITED_RATE


def campaign_rate(entry: ProviderEntry, sender: str) -> float:
    """The vendor's rate, or the sender's if slower (a long code, a pool of them)."""
    members = entry.pool(sender) or (sender,)
    limits = [entry.sender_limits.get(entry.kind_of(m)) for m in members]
    if not all(limit is not None for limit in limits):
        return vendor_rate(entry)
    senders = sum(lim.count / lim.per_seconds for lim in limits if lim is not None)
    return min(vendor_rate(entry), senders)


def backlog(rate: float, horizon: float) -> int:
    """Messages that keep a sender at `rate` busy for `horizon` seconds."""
    return max(1, math.ceil(rate * horizon))
