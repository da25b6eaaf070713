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
route is expected to get, computed from a snapshot's weights, backlogs and
rates as routing would spread the messages (no sampling).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from smsdispatch.campaigns.preparation import Prepared
from smsdispatch.campaigns.recipients import BadRow
from smsdispatch.config.routes import NoRouteError, Route, RouteVendor
from smsdispatch.producer.validation import Validator
from smsdispatch.routing.choose import SPILL_AFTER_SECONDS
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
    snapshot: Snapshot,
    route: Route,
    can_carry: Callable[[RouteVendor], bool],
    count: float = 1.0,
) -> dict[str, float]:
    """Each vendor's expected share (summing to 1) of `count` messages of a
    route routed now, as `Snapshot.choose` would route them one by one.

    Among the vendors that can carry the text and take a message now (not
    paused, breaker closed, weight above 0): by weight while each is booked
    less than `SPILL_AFTER_SECONDS` ahead; a vendor past it spills to the
    others; once all are past it, each next message goes to the one free
    soonest, which shares the rest in proportion to their rates. What the
    messages book is added to the snapshot (`Snapshot.booked`), so the next
    group of the same campaign sees it, as the import's chunk did. When none
    can take one now, the whole share goes where `choose` then waits: the
    heaviest resting weight among those that can carry it, an operator's
    drain respected. Empty: nobody can carry it. Probes of half-open
    breakers (a message or so per interval) are left out.
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
    if not live:
        kept = [v for v in able if (route.name, v.vendor) not in snapshot.drained] or able
        return {max(kept, key=lambda v: v.weight).vendor: 1.0}
    pace = {v: snapshot.pace.get((route.name, v), 0.0) for v in live}
    level = {
        v: snapshot.vendors[v].backlog_seconds + snapshot.booked.get(v, 0.0)
        if v in snapshot.vendors
        else snapshot.booked.get(v, 0.0)
        for v in live
    }
    share = _fill(live, pace, level, count)
    for vendor, n in share.items():
        snapshot.booked[vendor] = snapshot.booked.get(vendor, 0.0) + n * pace[vendor]
    total = sum(share.values()) or 1.0
    return {vendor: n / total for vendor, n in share.items() if n > 0}


def _fill(
    weights: dict[str, int], pace: dict[str, float], level: dict[str, float], count: float
) -> dict[str, float]:
    """Messages per vendor: by weight among those below the spill line, then
    levelling the seconds they are booked ahead (water-filling)."""
    given = dict.fromkeys(weights, 0.0)
    left = float(count)
    while left > 1e-9:
        free = [v for v in weights if _booked(v, pace, level, given) < SPILL_AFTER_SECONDS]
        if not free:
            break
        total = sum(weights[v] for v in free)
        # How many messages, split by weight, until the first free vendor fills.
        until_full = [
            (SPILL_AFTER_SECONDS - _booked(v, pace, level, given)) / pace[v] * total / weights[v]
            for v in free
            if pace[v] > 0
        ]
        step = min([left, *until_full])
        for v in free:
            given[v] += step * weights[v] / total
        left -= step
        if step <= 1e-9:
            break
    if left > 1e-9:
        _level(given, pace, level, left)
    return given


def _level(
    given: dict[str, float], pace: dict[str, float], level: dict[str, float], left: float
) -> None:
    """The rest to whichever vendor is free soonest: the booked seconds rise
    together, each vendor taking messages in proportion to its rate."""
    vendors = sorted(given, key=lambda v: _booked(v, pace, level, given))
    for i in range(len(vendors)):
        group = vendors[: i + 1]
        rate = sum(1 / pace[v] for v in group if pace[v] > 0)
        if rate == 0:  # no pace known: the first takes everything
            given[group[0]] += left
            return
        here = _booked(group[-1], pace, level, given)
        nxt = _booked(vendors[i + 1], pace, level, given) if i + 1 < len(vendors) else None
        # Raise every vendor of the group to the next one's level, or as far as `left` goes.
        room = sum((here - _booked(v, pace, level, given)) / pace[v] for v in group if pace[v] > 0)
        needed = room + ((nxt - here) * rate if nxt is not None else float("inf"))
        if left <= needed or nxt is None:
            target = here + (left - room) / rate
            for v in group:
                if pace[v] > 0:
                    given[v] += (target - _booked(v, pace, level, given)) / pace[v]
            return


def _booked(
    vendor: str, pace: dict[str, float], level: dict[str, float], given: dict[str, float]
) -> float:
    return level[vendor] + given[vendor] * pace[vendor]


def _open(snapshot: Snapshot, vendor: str) -> bool:
    state = snapshot.vendors.get(vendor)
    return state is None or (not state.paused and state.breaker is BreakerState.CLOSED)
