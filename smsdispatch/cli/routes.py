"""`smsdispatch routes`: each route's vendors as routing sees them; pin, drain and unpin."""

from __future__ import annotations

import getpass
from typing import Annotated

import redis
import typer
from rich.console import Console

from smsdispatch.cli.errors import fail
from smsdispatch.config.catalog import Catalog, load_catalog
from smsdispatch.config.routes import Route
from smsdispatch.config.settings import get_settings
from smsdispatch.limits import pauses
from smsdispatch.routing.view import changes_lines, route_rows, routes_table
from smsdispatch.routing.weights import WeightBoard

app = typer.Typer(help="Routes: where messages that name no vendor go.")
console = Console()

RouteName = Annotated[str, typer.Argument(help="The catalog route, e.g. default.")]
Vendor = Annotated[str, typer.Argument(help="A vendor of that route.")]
Seconds = Annotated[float, typer.Option("--for", min=1, help="How long, in seconds.")]
Reason = Annotated[str, typer.Option(help="Why, for the next operator.")]


def _board() -> tuple[Catalog, redis.Redis, WeightBoard]:
    settings = get_settings()
    catalog = load_catalog(settings.catalog_path)
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2)
    return catalog, client, WeightBoard(client, catalog.weights, catalog.breaker)


def _route(catalog: Catalog, name: str, vendor: str) -> Route:
    route = catalog.routes.get(name)
    if route is None:
        fail(f"no route {name!r}; routes: {', '.join(catalog.routes) or 'none'}")
    if route.vendor(vendor) is None:
        fail(f"route {name!r} has no vendor {vendor!r}; its vendors: "
             f"{', '.join(v.vendor for v in route.vendors)}")  # fmt: skip
    return route


def _operator() -> str:
    try:
        return f"{getpass.getuser()} (cli)"
    except (OSError, KeyError):
        return "operator (cli)"


@app.callback(invoke_without_command=True)
def show(
    ctx: typer.Context,
    changes: Annotated[int, typer.Option(help="How many of the latest weight changes.")] = 10,
) -> None:
    """Each route: its vendors' weights now and at rest, breakers, failures, pauses, pins."""
    if ctx.invoked_subcommand is not None:
        return
    catalog, client, board = _board()
    if not catalog.routes:
        console.print("the catalog has no routes: every message names its vendor")
        return
    rows = route_rows(catalog, client, pauses.redis_now(client))
    console.print(
        routes_table(rows, catalog.breaker.window_seconds, catalog.delivery.window_seconds)
    )
    lines = changes_lines(board.changes(changes))
    console.print("latest weight changes:" if lines else "no weight changes yet")
    for line in lines:
        console.print(f"  {line}", markup=False, highlight=False)


@app.command()
def pin(
    route: RouteName,
    vendor: Vendor,
    weight: Annotated[int, typer.Option(help="The weight to hold, 0 to 100.")],
    seconds: Seconds = 3600.0,
    reason: Reason = "pinned by an operator",
) -> None:
    """Hold a vendor's weight on a route for a while: health does not move it."""
    catalog, _, board = _board()
    if not 0 <= weight <= 100:
        fail(f"a weight is 0 to 100, not {weight}")
    board.pin(_route(catalog, route, vendor), vendor, weight, seconds, reason, _operator())
    console.print(f"{route}/{vendor} pinned at {weight} for {seconds:.0f}s")


@app.command()
def drain(
    route: RouteName,
    vendor: Vendor,
    seconds: Seconds = 3600.0,
    reason: Reason = "drained by an operator",
) -> None:
    """Send a route's new messages to its other vendors for a while (weight 0)."""
    catalog, _, board = _board()
    board.pin(_route(catalog, route, vendor), vendor, 0, seconds, reason, _operator())
    console.print(f"{route}/{vendor} drained for {seconds:.0f}s")


@app.command()
def unpin(route: RouteName, vendor: Vendor) -> None:
    """Lift a pin or a drain at once: health moves the weight again."""
    catalog, _, board = _board()
    if not board.unpin(_route(catalog, route, vendor), vendor, _operator()):
        fail(f"{route}/{vendor} is not pinned")
    console.print(f"{route}/{vendor} unpinned")
