"""Choosing the vendor of a route for one message: a pure decision over what is known now.

The caller gathers, per vendor of the route, what the choice needs (current
weight, how far ahead its limiter is booked, recent delivery figures) and
leaves out the vendors that cannot take a message now (not configured,
paused, breaker open, already tried for this message); this module only
decides, so that every rule can be tested without Redis.

The rules, in order:
1. A vendor whose weight is 0 is drained: it gets nothing.
2. Spill-over: a vendor booked further ahead than `spill_after_seconds` is
   passed over while another is not, so traffic beyond one vendor's rate
   flows to the others instead of waiting.
3. Priority messages (one-time passwords) go to the vendor delivering
   fastest lately (the typical time to delivery of routing/delivery.py)
   among those meeting the route's quality floor (fast but seldom is not
   fast: those below it come last); one without figures yet comes after
   those with; with no figures at all, the weights decide as for any message.
4. A route that prefers the cheapest takes the cheapest vendor that meets
   its quality floor (the delivered share of its recent final reports; a
   vendor without figures yet is given the benefit of the doubt); if none
   meets it, the weights decide.
5. Otherwise a weighted random choice, as GOV.UK Notify does: traffic splits
   by weight without any shared counter.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from smsdispatch.config.routes import Preference, Route, RouteVendor

# Past this many seconds of booked slots a vendor spills to the route's others.
SPILL_AFTER_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class Candidate:
    choice: RouteVendor
    weight: int  # the current weight (the resting one unless health moved it)
    backlog_seconds: float = 0.0  # how far ahead its limiter is booked
    # From routing/delivery.py over the catalog's [delivery] window; None: too
    # few final reports to say.
    delivered_share: float | None = None  # of recent final reports
    delivery_seconds: float | None = None  # recent typical (median) time to delivery


def choose(
    route: Route,
    candidates: Sequence[Candidate],
    rng: random.Random,
    *,
    priority: bool = False,
    spill_after_seconds: float = SPILL_AFTER_SECONDS,
) -> RouteVendor | None:
    """The vendor for one message, or None when no candidate may take it."""
    live = [c for c in candidates if c.weight > 0]
    if not live:
        return None
    free = [c for c in live if c.backlog_seconds <= spill_after_seconds]
    if not free:
        # Every vendor is booked ahead: the one free soonest.
        return min(live, key=lambda c: c.backlog_seconds).choice
    if priority and any(c.delivery_seconds is not None for c in free):
        return min(free, key=lambda c: (not _meets(route, c), *_fastest(c))).choice
    if route.prefer is Preference.CHEAPEST:
        good = [c for c in free if _meets(route, c)]
        if good:
            return min(good, key=_price).choice
    return weighted(free, rng).choice


def weighted(candidates: Sequence[Candidate], rng: random.Random) -> Candidate:
    return rng.choices(candidates, weights=[c.weight for c in candidates])[0]


def _meets(route: Route, c: Candidate) -> bool:
    """Meets the route's quality floor, or has no figures to say it does not."""
    return c.delivered_share is None or c.delivered_share >= route.quality_floor


def _fastest(c: Candidate) -> tuple[bool, float, int]:
    known = c.delivery_seconds is not None
    return (not known, c.delivery_seconds or 0.0, -c.weight)


def _price(c: Candidate) -> tuple[object, int]:
    # Validation makes a cheapest route price every vendor.
    return (c.choice.price_per_segment, -c.weight)
