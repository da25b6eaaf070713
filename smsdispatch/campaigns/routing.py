"""Routing a campaign that names no vendor: each recipient's message by its route.

A routed campaign (`provider` left out or "auto") stores no vendor of its
own. Its messages are routed when they are imported, a chunk at a time: one
routing snapshot (routing/router.py: weights, pauses, breakers, backlogs read
once) per import chunk, then one choice per message among the vendors of the
number's route that can carry the rendered text (configured, and the text
fits that vendor: a template's rendered length differs per row). Each message
stores the vendor chosen, the route's sender for it and the route's name, as
a routed single message does, so the sending side treats them alike.

`expected_split` is the campaign preview's figure: the share each vendor of a
route is expected to get, computed from a snapshot's weights (no sampling).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from smsdispatch.campaigns.preparation import Prepared
from smsdispatch.campaigns.recipients import BadRow
from smsdispatch.config.routes import NoRouteError, Route, RouteVendor
from smsdispatch.producer.validation import Validator
from smsdispatch.routing.health import BreakerState
from smsdispatch.routing.router import Snapshot


@dataclass(frozen=True, slots=True)
class Routed:
    """A prepared message and where routing sends it."""

    message: Prepared
    vendor: str
    sender: str
    route: str


@dataclass
class ChunkRouter:
    """Routes an import chunk's messages with one snapshot taken per chunk."""

    validator: Validator
    snapshot: Callable[[], Snapshot]

    def assign(self, chunk: Sequence[Prepared]) -> list[Routed | BadRow]:
        if not chunk:
            return []
        routing = self.snapshot()
        table = self.validator.catalog.route_table
        out: list[Routed | BadRow] = []
        for p in chunk:
            try:
                route = table.route_for(p.recipient)
            except NoRouteError as exc:
                out.append(BadRow(p.line, str(exc)))
                continue
            text = p.text
            choice = routing.choose(route, partial(self.validator.can_carry, text=text))
            if choice is None:
                out.append(
                    BadRow(p.line, f"the message: {self.validator.why_no_vendor(route, text)}")
                )
                continue
            out.append(Routed(p, choice.vendor, choice.sender, route.name))
        return out


def fits(validator: Validator, choice: RouteVendor, length: int) -> bool:
    """`Validator.can_carry` for a text known by its length only (the preview's groups)."""
    entry = validator.catalog.get(choice.vendor)
    return not validator.unconfigured[entry.name] and length <= entry.max_text_chars


def expected_split(
    snapshot: Snapshot, route: Route, can_carry: Callable[[RouteVendor], bool]
) -> dict[str, float]:
    """Each vendor's expected share (summing to 1) of a route's messages now.

    The weight share among the vendors that can carry the text and can take
    a message now (not paused, breaker closed, weight above 0), as
    `Snapshot.choose` draws them. When none can take one now, the whole share
    goes where `choose` then waits: the heaviest resting weight among those
    that can carry it, an operator's drain respected. Empty: nobody can carry
    it. Probes of half-open breakers (a message or so per interval) and
    spill-over from a vendor booked ahead (which depends on the pace of the
    sending, not on the snapshot) are left out of the expectation.
    """
    able = [v for v in route.vendors if can_carry(v)]
    if not able:
        return {}
    weights = snapshot.weights.get(route.name, {})
    live = {
        v.vendor: weights.get(v.vendor, v.weight)
        for v in able
        if _open(snapshot, v.vendor) and weights.get(v.vendor, v.weight) > 0
    }
    total = sum(live.values())
    if total > 0:
        return {vendor: weight / total for vendor, weight in live.items()}
    kept = [v for v in able if (route.name, v.vendor) not in snapshot.drained] or able
    return {max(kept, key=lambda v: v.weight).vendor: 1.0}


def _open(snapshot: Snapshot, vendor: str) -> bool:
    state = snapshot.vendors.get(vendor)
    return state is None or (not state.paused and state.breaker is BreakerState.CLOSED)
