"""`smsdispatch routes`: each route's vendors as routing sees them, and its latest changes."""

from __future__ import annotations

from typing import Annotated

import redis
import typer
from rich.console import Console

from smsdispatch.config.catalog import load_catalog
from smsdispatch.config.settings import get_settings
from smsdispatch.limits import pauses
from smsdispatch.routing.view import changes_lines, route_rows, routes_table
from smsdispatch.routing.weights import WeightBoard

console = Console()


def routes(
    changes: Annotated[int, typer.Option(help="How many of the latest weight changes.")] = 10,
) -> None:
    """Each route: its vendors' weights now and at rest, breakers, failures, pauses."""
    settings = get_settings()
    catalog = load_catalog(settings.catalog_path)
    client = redis.Redis.from_url(settings.redis_url)
    now = pauses.redis_now(client)
    if not catalog.routes:
        console.print("the catalog has no routes: every message names its vendor")
        return
    console.print(routes_table(route_rows(catalog, client, now), catalog.breaker.window_seconds))
    board = WeightBoard(client, catalog.weights, catalog.breaker)
    lines = changes_lines(board.changes(changes))
    console.print("latest weight changes:" if lines else "no weight changes yet")
    for line in lines:
        console.print(f"  {line}", markup=False, highlight=False)
