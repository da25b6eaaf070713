"""Routes' current weights, moved by health in bounded steps, with every change kept.

A route's resting weights are in the catalog; the current ones live in Redis
so every producer and worker splits traffic alike. `rebalance` (run on a
schedule) steps a failing vendor down and, after a quiet spell, a recovered
one back up towards its resting weight (WeightPolicy). A vendor is failing
while its breaker is open, while too many of its answers in the breaker's
window failed, or, as GOV.UK Notify has it, while too many of its recent
final reports were deliveries slower than the catalog's `[delivery]`
`slow_after_seconds` (routing/delivery.py). Each move is one Lua
script on Redis time: the cooldown check, the new weight, its time and the
change record (route, vendor, from, to, reason) happen together or not at
all, however many processes rebalance at once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

import redis

from smsdispatch.config.catalog import Catalog
from smsdispatch.config.routes import (
    BreakerPolicy,
    DeliveryPolicy,
    Route,
    RouteVendor,
    WeightPolicy,
)
from smsdispatch.limits import pauses
from smsdispatch.routing.delivery import DeliveryBoard, DeliveryFigures
from smsdispatch.routing.health import BreakerState, HealthBoard
from smsdispatch.routing.health import text_of as _text
from smsdispatch.vocabulary import keys


class Direction(Enum):
    DOWN = -1
    BACK = 1  # towards the resting weight


# KEYS: weights hash, changed hash, changes stream.
# ARGV: route, vendor, resting, direction (-1/1), step, cooldown_s, quiet_s, reason, maxlen.
# Returns {weight now, 1 if it changed}.
_MOVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local vendor, resting = ARGV[2], tonumber(ARGV[3])
local direction, step = tonumber(ARGV[4]), tonumber(ARGV[5])
local current = tonumber(redis.call('HGET', KEYS[1], vendor) or resting)
local last = tonumber(redis.call('HGET', KEYS[2], vendor) or '0')
local wait = tonumber(ARGV[6])
if direction > 0 then wait = tonumber(ARGV[7]) end
if now - last < wait then return {current, 0} end
local new = current - step
if new < 0 then new = 0 end
if direction > 0 then
  new = current + step
  if new > resting then new = resting end
end
if new == current then return {current, 0} end
redis.call('HSET', KEYS[1], vendor, new)
redis.call('HSET', KEYS[2], vendor, now)
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[9], '*', 'route', ARGV[1], 'vendor', vendor,
           'from', current, 'to', new, 'reason', ARGV[8], 'at', string.format('%.3f', now))
return {new, 1}
"""


@dataclass(frozen=True, slots=True)
class Change:
    route: str
    vendor: str
    before: int
    after: int
    reason: str
    at: float  # Redis time, seconds


class WeightBoard:
    def __init__(
        self,
        client: redis.Redis,
        policy: WeightPolicy,
        breaker: BreakerPolicy,
        delivery: DeliveryPolicy | None = None,
    ) -> None:
        self.client = client
        self.policy = policy
        self.breaker = breaker
        self.delivery = delivery or DeliveryPolicy()
        self._move = client.register_script(_MOVE)

    def current(self, route: Route, pins: dict[str, int] | None = None) -> dict[str, int]:
        """Each vendor's weight now: an operator's pin, else the stored one,
        else its resting weight. `pins`: the route's pins, if already read."""
        stored = self.client.hgetall(keys.route_weights(route.name))
        now = {_text(k): int(_text(v)) for k, v in stored.items()}
        weights = {v.vendor: now.get(v.vendor, v.weight) for v in route.vendors}
        return weights | (self.pins(route) if pins is None else pins)

    def pins(self, route: Route) -> dict[str, int]:
        """The route's vendors an operator holds now, and at what weight (0: drained)."""
        pipe = self.client.pipeline(transaction=False)
        for choice in route.vendors:
            pipe.get(keys.route_pin(route.name, choice.vendor))
        return {
            choice.vendor: int(json.loads(pin)["weight"])
            for choice, pin in zip(route.vendors, pipe.execute(), strict=True)
            if pin is not None
        }

    def pin(
        self, route: Route, vendor: str, weight: int, seconds: float, reason: str, by: str
    ) -> None:
        """Hold a vendor's weight on a route for `seconds` (0 drains it): health
        does not move it meanwhile. Kept in the changes like any move."""
        self._vendor_of(route, vendor)
        if not 0 <= weight <= 100:
            raise ValueError(f"a weight is 0 to 100, not {weight}")
        before = self.current(route)[vendor]
        value = json.dumps({"weight": weight, "reason": reason, "by": by})
        self.client.set(keys.route_pin(route.name, vendor), value, px=max(1, int(seconds * 1000)))
        what = "drained" if weight == 0 else f"pinned at {weight}"
        self._record(route, vendor, before, weight, f"{what} for {seconds:.0f}s by {by}: {reason}")

    def unpin(self, route: Route, vendor: str, by: str) -> bool:
        """Lift an operator's pin at once; False if there was none."""
        self._vendor_of(route, vendor)
        before = self.current(route)[vendor]
        lifted = bool(self.client.delete(keys.route_pin(route.name, vendor)))
        if lifted:
            after = self.current(route)[vendor]
            self._record(route, vendor, before, after, f"pin lifted by {by}")
        return lifted

    def pinned(self, route: Route, vendor: str) -> bool:
        return bool(self.client.exists(keys.route_pin(route.name, vendor)))

    def _record(self, route: Route, vendor: str, before: int, after: int, reason: str) -> None:
        at = pauses.redis_now(self.client).timestamp()
        self.client.xadd(
            keys.ROUTE_CHANGES,
            {
                "route": route.name,
                "vendor": vendor,
                "from": before,
                "to": after,
                "reason": reason,
                "at": f"{at:.3f}",
            },
            maxlen=self.policy.keep_changes,
            approximate=True,
        )

    @staticmethod
    def _vendor_of(route: Route, vendor: str) -> RouteVendor:
        choice = route.vendor(vendor)
        if choice is None:
            raise KeyError(f"route {route.name!r} has no vendor {vendor!r}")
        return choice

    def move(self, route: Route, vendor: str, direction: Direction, reason: str) -> int | None:
        """One step down, or back towards rest; the new weight, or None if the
        cooldown (down) or the quiet spell (back) has not passed, or it is at its bound."""
        choice = self._vendor_of(route, vendor)
        p = self.policy
        weight, changed = self._move(
            keys=[
                keys.route_weights(route.name),
                keys.route_weight_changed(route.name),
                keys.ROUTE_CHANGES,
            ],
            args=[
                route.name,
                vendor,
                choice.weight,
                direction.value,
                p.step,
                p.cooldown_seconds,
                p.recover_after_seconds,
                reason,
                p.keep_changes,
            ],
        )
        return int(weight) if changed else None

    def rebalance(
        self,
        route: Route,
        health: HealthBoard,
        delivery: Mapping[str, DeliveryFigures] | None = None,
    ) -> list[str]:
        """Step each failing vendor down and each quiet one back; what moved.
        `delivery`: the vendors' delivery figures (none: not judged on them)."""
        moved = []
        for choice in route.vendors:
            if self.pinned(route, choice.vendor):
                continue  # an operator holds it
            figures = (delivery or {}).get(choice.vendor)
            reason, direction = self._verdict(choice.vendor, health, figures)
            if self.move(route, choice.vendor, direction, reason) is not None:
                moved.append(choice.vendor)
        return moved

    def _verdict(
        self, vendor: str, health: HealthBoard, delivery: DeliveryFigures | None = None
    ) -> tuple[str, Direction]:
        breaker = health.breaker(vendor)
        if breaker.state is BreakerState.OPEN:
            return f"breaker open: {breaker.reason}", Direction.DOWN
        figures = health.health(vendor)
        if (
            figures.answers >= self.breaker.min_volume
            and figures.failure_share >= self.policy.failure_share
        ):
            return (
                f"{figures.errors + figures.timeouts} of {figures.answers} answers failed "
                f"in {self.breaker.window_seconds:.0f}s",
                Direction.DOWN,
            )
        slow = self._slow(delivery)
        if slow is not None:
            return slow, Direction.DOWN
        return "healthy again", Direction.BACK

    def _slow(self, delivery: DeliveryFigures | None) -> str | None:
        """Why the vendor delivers too slowly, or None (too few reports to say: not slow)."""
        p = self.delivery
        share = delivery.slow_share(p.slow_after_seconds) if delivery else None
        if delivery is None or share is None or share < p.slow_share:
            return None
        return (
            f"{share:.0%} of {delivery.reports} final reports took over "
            f"{_span(p.slow_after_seconds)} to deliver in {_span(p.window_seconds)}"
        )

    def changes(self, count: int = 20) -> list[Change]:
        """The latest weight changes, newest first."""
        entries = self.client.xrevrange(keys.ROUTE_CHANGES, count=count) or []
        out = []
        for _, raw in entries:
            f = {_text(k): _text(v) for k, v in (raw or {}).items()}
            out.append(
                Change(
                    f["route"],
                    f["vendor"],
                    int(f["from"]),
                    int(f["to"]),
                    f["reason"],
                    float(f["at"]),
                )
            )
        return out


def _span(seconds: float) -> str:
    """300 -> "5 min", 30 -> "30 s"."""
    return f"{seconds / 60:g} min" if seconds >= 60 and seconds % 60 == 0 else f"{seconds:g} s"


def rebalance_routes(catalog: Catalog, client: redis.Redis) -> dict[str, list[str]]:
    """Every route's rebalance (the periodic task's job): route -> vendors moved.
    Delivery figures are read once, for every vendor of the routes."""
    health = HealthBoard(client, catalog.breaker)
    board = WeightBoard(client, catalog.weights, catalog.breaker, catalog.delivery)
    vendors = {v.vendor for r in catalog.routes.values() for v in r.vendors}
    delivery = DeliveryBoard(client, catalog.delivery).figures(sorted(vendors))
    moved = {
        route.name: board.rebalance(route, health, delivery) for route in catalog.routes.values()
    }
    return {name: vendors for name, vendors in moved.items() if vendors}
