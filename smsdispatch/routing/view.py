"""What `smsdispatch routes` shows: each route's vendors as routing sees them now.

Per vendor of a route: its sender on the route, its weight now against its
resting weight, its breaker and why, its answers in the breaker's window and
the share that failed, its delivered share and typical time to delivery over
the delivery window (routing/delivery.py; "-" with too few final reports),
and whether it is paused; then the latest weight changes with their reasons.
Everything read from Redis, as every worker and producer reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import redis
from rich import box
from rich.table import Column, Table

from smsdispatch.config.catalog import Catalog
from smsdispatch.limits import pauses
from smsdispatch.routing.delivery import DeliveryBoard
from smsdispatch.routing.health import HealthBoard
from smsdispatch.routing.weights import Change, WeightBoard


@dataclass(frozen=True, slots=True)
class RouteRow:
    route: str
    destinations: str
    vendor: str
    sender: str
    weight: int
    resting: int
    breaker: str
    answers: int
    failure_share: float
    paused: bool
    pinned: bool = False
    final_reports: int = 0  # in the delivery window
    delivered_share: float | None = None  # of them; None: too few to say
    delivery_seconds: float | None = None  # typical (median) time to delivery


def route_rows(catalog: Catalog, client: redis.Redis, now: datetime) -> list[RouteRow]:
    health = HealthBoard(client, catalog.breaker)
    weights = WeightBoard(client, catalog.weights, catalog.breaker)
    vendors = sorted({v.vendor for r in catalog.routes.values() for v in r.vendors})
    delivery = DeliveryBoard(client, catalog.delivery).figures(vendors)
    rows = []
    for route in catalog.routes.values():
        current = weights.current(route)
        for choice in route.vendors:
            breaker = health.breaker(choice.vendor)
            figures = health.health(choice.vendor)
            state = breaker.state.value + (f" ({breaker.reason})" if breaker.reason else "")
            rows.append(
                RouteRow(
                    route.name,
                    ", ".join(route.destinations),
                    choice.vendor,
                    choice.sender,
                    current[choice.vendor],
                    choice.weight,
                    state,
                    figures.answers,
                    figures.failure_share,
                    pauses.current_pause(client, choice.vendor, now) is not None,
                    weights.pinned(route, choice.vendor),
                    delivery[choice.vendor].reports,
                    delivery[choice.vendor].delivered_share,
                    delivery[choice.vendor].typical_seconds,
                )
            )
    return rows


def routes_table(
    rows: list[RouteRow], window_seconds: float, delivery_window_seconds: float | None = None
) -> Table:
    """Fits 80 columns: the destinations are in the route's cell, wrapped.
    `delivery_window_seconds` names the delivery column's window."""
    delivered = "delivered" + (
        f"\nlast {delivery_window_seconds / 60:.0f}m" if delivery_window_seconds else ""
    )
    table = Table(
        Column("route", overflow="fold", max_width=14),
        "vendor",
        "sender",
        Column("weight", justify="right"),
        Column(f"failed/{window_seconds:.0f}s", justify="right", min_width=10),
        Column(delivered, justify="right", min_width=9, no_wrap=True),
        Column("breaker", overflow="fold"),
        box=box.SIMPLE,
        pad_edge=False,
    )
    last = None
    for row in rows:
        named = row.route if row.destinations == row.route else f"{row.route}: {row.destinations}"
        name = named if row.route != last else ""
        last = row.route
        failed = f"{row.failure_share:.0%} of {row.answers}" if row.answers else "-"
        breaker = "paused; " + row.breaker if row.paused else row.breaker
        weight = f"{row.weight}/{row.resting}" + (" pin" if row.pinned else "")
        table.add_row(name, row.vendor, row.sender, weight, failed, _delivery(row), breaker)
    return table


def _delivery(row: RouteRow) -> str:
    """ "98% 4s": the delivered share and typical time to delivery; "-" without figures."""
    if row.delivered_share is None:
        return "-"
    share = f"{row.delivered_share:.0%}"
    if row.delivery_seconds is None:
        return share
    seconds = row.delivery_seconds
    typical = f"{seconds:.0f}s" if seconds < 90 else f"{seconds / 60:.0f}m"
    return f"{share} {typical}"


def changes_lines(changes: list[Change]) -> list[str]:
    return [
        f"{datetime.fromtimestamp(c.at, UTC):%Y-%m-%d %H:%M:%S} UTC "
        f"{c.route}/{c.vendor} {c.before} -> {c.after}: {c.reason}"
        for c in changes
    ]
