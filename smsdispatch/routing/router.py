"""Routing messages that name no vendor: one snapshot per batch, one choice per message.

`Router.snapshot` reads, once for a whole batch, what the choice needs for
every vendor that some route names: its current weight on each route, whether
it is paused, its breaker, how far ahead its account limit is booked, and its
delivery figures (routing/delivery.py: the delivered share and typical time
to delivery over the catalog's `[delivery]` window, one round trip for all
vendors). The snapshot then chooses per message (routing/choose.py) without
another round trip. The snapshot itself costs a few round trips per vendor
of the routes (about fifteen for the shipped catalog), whatever the batch's
size.

A half-open breaker lets one probe through per interval (routing/health.py):
the snapshot asks it when the batch's first message that vendor could carry
comes and, if granted, routes that message to it.

Spill-over here reads how far ahead each vendor's limiter is booked when the
batch is accepted, and adds what the batch's own choices will book (one
message books 1 / its vendor's rate, `pace_of`): a batch larger than one
vendor's 2 s spills to the others as it is routed, and a steady stream moves
off a vendor that is booked up. What the limiter still defers at send time
spills there too (sending/failover.py, with the same bookkeeping).

With delivery figures, priority messages go to the vendor delivering fastest
and a cheapest route takes the cheapest vendor meeting its quality floor; a
vendor with too few final reports in the window has no figures, and is
given the benefit of the doubt (routing/choose.py).

When no vendor of the route can take a message now (all paused, breakers
open, drained), it still goes to the route's vendor with the highest resting
weight among those that can carry it at all: the worker holds it there until
that vendor can send, as it would a message that named its vendor. Nothing is
refused for a vendor's bad minute.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

import redis

from smsdispatch.config.catalog import Catalog
from smsdispatch.config.routes import Route, RouteVendor
from smsdispatch.limits import pauses
from smsdispatch.limits.rates import campaign_rate
from smsdispatch.routing.choose import SPILL_AFTER_SECONDS, Candidate, choose
from smsdispatch.routing.delivery import DeliveryBoard, DeliveryFigures
from smsdispatch.routing.health import BreakerState, HealthBoard
from smsdispatch.routing.weights import WeightBoard
from smsdispatch.vocabulary import keys

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class VendorState:
    paused: bool
    breaker: BreakerState
    backlog_seconds: float


@dataclass
class Snapshot:
    """What routing knows for one batch; `choose` per message."""

    weights: dict[str, dict[str, int]]  # route -> vendor -> current weight
    vendors: dict[str, VendorState]
    rng: random.Random
    # Asks a vendor's half-open breaker for one probe (routing/health.py);
    # None: no breaker to ask (routing on resting weights).
    admit: Callable[[str], bool] | None = None
    asked: set[str] = field(default_factory=set)  # half-open vendors asked this batch
    drained: set[tuple[str, str]] = field(
        default_factory=set
    )  # (route, vendor) an operator drained
    # Seconds of a vendor's limiter one message from that route's sender
    # books (1 / its rate), and what this snapshot's choices booked so far:
    # the messages of one batch spill over as the limiter will fill, not all
    # to the vendor that looked free when the batch began.
    pace: dict[tuple[str, str], float] = field(default_factory=dict)
    booked: dict[str, float] = field(default_factory=dict)
    # Each vendor's delivery figures (routing/delivery.py); absent: none known.
    delivery: dict[str, DeliveryFigures] = field(default_factory=dict)

    def choose(
        self, route: Route, can_carry: Callable[[RouteVendor], bool], *, priority: bool = False
    ) -> RouteVendor | None:
        """The vendor for one message; None if no vendor of the route can carry it at all."""
        able = [v for v in route.vendors if can_carry(v)]
        if not able:
            return None
        probe = self._probe(route, able)
        if probe is not None:
            return self._book(route, probe)
        candidates = [self._candidate(route, v) for v in able if self._open_to(v.vendor)]
        chosen = choose(route, candidates, self.rng, priority=priority)
        if chosen is not None:
            return self._book(route, chosen)
        # Nobody can send now: wait on the heaviest, an operator's drain respected.
        kept = [v for v in able if (route.name, v.vendor) not in self.drained] or able
        return max(kept, key=lambda v: v.weight)

    def failover(
        self,
        route: Route,
        current: str,
        can_carry: Callable[[RouteVendor], bool],
        *,
        spill: bool = False,
        priority: bool = False,
    ) -> RouteVendor | None:
        """Another vendor of the route for a message `current` certainly did not
        send (sending/failover.py); None: it stays where it is.

        Only a vendor that can send now takes it (not paused, breaker closed,
        not drained, weight above 0): a message is never moved to wait
        somewhere else. `spill`: it was only held by `current`'s limiter, so
        it moves only to a vendor booked less than `SPILL_AFTER_SECONDS` ahead.
        """
        candidates = [
            self._candidate(route, v)
            for v in route.vendors
            if v.vendor != current
            and (route.name, v.vendor) not in self.drained
            and self._open_to(v.vendor)
            and can_carry(v)
        ]
        if spill:
            candidates = [c for c in candidates if c.backlog_seconds <= SPILL_AFTER_SECONDS]
        chosen = choose(route, candidates, self.rng, priority=priority)
        return None if chosen is None else self._book(route, chosen)

    def _probe(self, route: Route, able: list[RouteVendor]) -> RouteVendor | None:
        """The batch's first message that a half-open vendor could carry is its
        probe, if the breaker grants one: asked only when a message could take
        it. A vendor health has stepped down to weight 0 is probed too (how
        it comes back); one an operator drained is not."""
        for choice in able:
            state = self.vendors[choice.vendor]
            if (
                state.paused
                or state.breaker is BreakerState.CLOSED
                or choice.vendor in self.asked
                or (route.name, choice.vendor) in self.drained  # an operator's: no traffic
                or self.admit is None
            ):
                continue
            self.asked.add(choice.vendor)
            if self.admit(choice.vendor):
                return choice
        return None

    def _open_to(self, vendor: str) -> bool:
        state = self.vendors[vendor]
        return not state.paused and state.breaker is BreakerState.CLOSED

    def _candidate(self, route: Route, choice: RouteVendor) -> Candidate:
        figures = self.delivery.get(choice.vendor)
        return Candidate(
            choice,
            self.weights[route.name][choice.vendor],
            self.vendors[choice.vendor].backlog_seconds + self.booked.get(choice.vendor, 0.0),
            delivered_share=figures.delivered_share if figures else None,
            delivery_seconds=figures.typical_seconds if figures else None,
        )

    def _book(self, route: Route, choice: RouteVendor) -> RouteVendor:
        """Count the chosen message against its vendor's limiter in this snapshot."""
        step = self.pace.get((route.name, choice.vendor), 0.0)
        self.booked[choice.vendor] = self.booked.get(choice.vendor, 0.0) + step
        return choice


def resting(
    routes: Iterable[Route], rng: random.Random, pace: dict[tuple[str, str], float] | None = None
) -> Snapshot:
    """A snapshot that knows nothing of health: resting weights, every vendor open."""
    chosen = list(routes)
    idle = VendorState(paused=False, breaker=BreakerState.CLOSED, backlog_seconds=0.0)
    return Snapshot(
        {r.name: {v.vendor: v.weight for v in r.vendors} for r in chosen},
        {v.vendor: idle for r in chosen for v in r.vendors},
        rng,
        pace=pace or {},
    )


def pace_of(catalog: Catalog, routes: Iterable[Route]) -> dict[tuple[str, str], float]:
    """Seconds of its vendor's limiter one message of each route vendor books:
    1 / the vendor's rate, or its sender's where that is slower (a long code)."""
    return {
        (route.name, choice.vendor): 1.0 / campaign_rate(catalog.get(choice.vendor), choice.sender)
        for route in routes
        for choice in route.vendors
    }


class Router:
    def __init__(
        self, catalog: Catalog, client: redis.Redis, rng: random.Random | None = None
    ) -> None:
        self.catalog = catalog
        self.client = client
        self.rng = rng or random.Random()  # a traffic split, not a secret
        self.health = HealthBoard(client, catalog.breaker)
        self.weights = WeightBoard(client, catalog.weights, catalog.breaker)
        self.delivery = DeliveryBoard(client, catalog.delivery)

    def snapshot(self, now: datetime, routes: Iterable[Route] | None = None) -> Snapshot:
        """Weights, pauses, breakers, backlogs and delivery figures of the
        routes' vendors, read now.

        Without Redis, the resting weights and no vendor paused: messages are
        still routed (and stored: the sweeper enqueues them once Redis is
        back), only without what the last minutes taught.
        """
        chosen = list(routes if routes is not None else self.catalog.routes.values())
        try:
            return self._snapshot(now, chosen)
        except redis.RedisError as exc:
            log.warning("routing on resting weights: Redis unavailable (%s)", type(exc).__name__)
            return resting(chosen, self.rng, pace_of(self.catalog, chosen))

    def _snapshot(self, now: datetime, chosen: list[Route]) -> Snapshot:
        vendors = sorted({v.vendor for r in chosen for v in r.vendors})
        pins = {r.name: self.weights.pins(r) for r in chosen}
        return Snapshot(
            {r.name: self.weights.current(r, pins[r.name]) for r in chosen},
            {v: self._state(v, now) for v in vendors},
            self.rng,
            admit=self._admit,
            drained={(r, v) for r, pinned in pins.items() for v, w in pinned.items() if w == 0},
            pace=pace_of(self.catalog, chosen),
            delivery=self.delivery.figures(vendors),
        )

    def _admit(self, vendor: str) -> bool:
        """A probe for a half-open vendor; none without Redis (the batch goes on)."""
        try:
            state, allowed = self.health.admit(vendor)
        except redis.RedisError as exc:
            log.warning("no probe for %s: Redis unavailable (%s)", vendor, type(exc).__name__)
            return False
        return allowed and state is BreakerState.HALF_OPEN

    def _state(self, vendor: str, now: datetime) -> VendorState:
        return VendorState(
            paused=pauses.current_pause(self.client, vendor, now) is not None,
            breaker=self.health.breaker(vendor).state,
            backlog_seconds=self._backlog(vendor),
        )

    def _backlog(self, vendor: str) -> float:
        """How far ahead the vendor's account limit is booked (limits/gcra.py's TAT)."""
        pipe = self.client.pipeline()
        pipe.time()
        pipe.get(keys.rate_account(vendor))
        (seconds, micros), tat = pipe.execute()
        if tat is None:
            return 0.0
        return max(0.0, (float(tat) - (int(seconds) * 1_000_000 + int(micros))) / 1_000_000)
