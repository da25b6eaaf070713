"""Choosing a route's vendor for one message."""

from __future__ import annotations

import random
from collections import Counter
from decimal import Decimal

from smsdispatch.config.routes import Preference, Route, RouteVendor
from smsdispatch.routing.choose import Candidate, choose

CUE = RouteVendor(vendor="cue", sender="CUESMS", weight=75, price_per_segment=Decimal("0.008"))
SKY = RouteVendor(vendor="skycore", sender="00000", weight=25, price_per_segment=Decimal("0.005"))
ROUTE = Route(name="r", destinations=("default",), vendors=(CUE, SKY))
CHEAPEST = ROUTE.model_copy(update={"prefer": Preference.CHEAPEST})


def picks(route: Route, candidates: list[Candidate], n: int = 4000, **kw: bool) -> Counter[str]:
    rng = random.Random(7)
    return Counter(
        chosen.vendor if (chosen := choose(route, candidates, rng, **kw)) else "none"
        for _ in range(n)
    )


def test_traffic_splits_by_the_current_weights() -> None:
    counts = picks(ROUTE, [Candidate(CUE, 75), Candidate(SKY, 25)])
    assert 0.72 < counts["cue"] / 4000 < 0.78


def test_a_drained_vendor_gets_nothing() -> None:
    assert picks(ROUTE, [Candidate(CUE, 0), Candidate(SKY, 25)]) == {"skycore": 4000}


def test_with_every_vendor_drained_or_unavailable_nothing_is_chosen() -> None:
    assert choose(ROUTE, [Candidate(CUE, 0)], random.Random(1)) is None
    assert choose(ROUTE, [], random.Random(1)) is None


def test_a_vendor_booked_far_ahead_spills_to_the_others() -> None:
    candidates = [Candidate(CUE, 75, backlog_seconds=5.0), Candidate(SKY, 25)]
    assert picks(ROUTE, candidates) == {"skycore": 4000}


def test_when_every_vendor_is_booked_ahead_the_one_free_soonest_takes_it() -> None:
    candidates = [Candidate(CUE, 75, backlog_seconds=9.0), Candidate(SKY, 25, backlog_seconds=4.0)]
    assert picks(ROUTE, candidates) == {"skycore": 4000}


def test_a_priority_message_goes_to_the_vendor_delivering_fastest() -> None:
    candidates = [
        Candidate(CUE, 75, delivery_seconds=9.0),
        Candidate(SKY, 25, delivery_seconds=3.0),
    ]
    assert picks(ROUTE, candidates, priority=True) == {"skycore": 4000}


def test_a_vendor_without_delivery_figures_comes_after_those_with_for_priority() -> None:
    candidates = [Candidate(CUE, 75), Candidate(SKY, 25, delivery_seconds=30.0)]
    assert picks(ROUTE, candidates, priority=True) == {"skycore": 4000}


def test_a_cheapest_route_takes_the_cheapest_vendor_meeting_its_quality_floor() -> None:
    candidates = [
        Candidate(CUE, 75, delivered_share=0.99),
        Candidate(SKY, 25, delivered_share=0.95),
    ]
    assert picks(CHEAPEST, candidates) == {"skycore": 4000}


def test_a_cheapest_route_passes_over_a_cheap_vendor_below_its_quality_floor() -> None:
    candidates = [Candidate(CUE, 75, delivered_share=0.99), Candidate(SKY, 25, delivered_share=0.5)]
    assert picks(CHEAPEST, candidates) == {"cue": 4000}


def test_a_cheapest_route_falls_back_to_the_weights_when_no_vendor_meets_the_floor() -> None:
    candidates = [Candidate(CUE, 75, delivered_share=0.2), Candidate(SKY, 25, delivered_share=0.5)]
    counts = picks(CHEAPEST, candidates)
    assert set(counts) == {"cue", "skycore"}


def test_without_any_delivery_figures_a_priority_message_is_chosen_by_weight() -> None:
    counts = picks(ROUTE, [Candidate(CUE, 75), Candidate(SKY, 25)], priority=True)
    assert 0.72 < counts["cue"] / 4000 < 0.78


def test_a_priority_message_passes_over_a_fast_vendor_below_the_quality_floor() -> None:
    candidates = [
        Candidate(CUE, 75, delivered_share=0.95, delivery_seconds=9.0),
        Candidate(SKY, 25, delivered_share=0.40, delivery_seconds=3.0),  # fast, but seldom
    ]
    assert picks(ROUTE, candidates, priority=True) == {"cue": 4000}
