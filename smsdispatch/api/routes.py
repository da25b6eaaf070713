"""Routes over HTTP: see them as routing does, pin or drain a vendor for a while.

    GET    /v1/routes                                  every route's vendors now
    POST   /v1/routes/{route}/vendors/{vendor}/pin     {"weight", "seconds", "reason"}
    DELETE /v1/routes/{route}/vendors/{vendor}/pin     lift the pin at once

A weight of 0 drains the vendor: the route's new messages go to its others.
A pin names the API key that set it, and is kept in the route's changes.
An unknown route or vendor is a 404 naming the known ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any

import redis
from fastapi import APIRouter, Depends, HTTPException, Path, status
from fastapi.params import Depends as Dependency

from smsdispatch.api.schemas import PinIn, RouteVendorOut
from smsdispatch.config.catalog import Catalog
from smsdispatch.config.routes import Route
from smsdispatch.limits import pauses
from smsdispatch.routing.view import route_rows
from smsdispatch.routing.weights import WeightBoard

Name = Annotated[str, Path(max_length=64)]


def routes_router(
    catalog: Catalog,
    client: redis.Redis,
    guarded: Sequence[Dependency],
    caller: Callable[..., str],
) -> APIRouter:
    router = APIRouter(prefix="/v1/routes", tags=["routes"], dependencies=list(guarded))
    board = WeightBoard(client, catalog.weights, catalog.breaker)
    unknown: dict[int | str, dict[str, Any]] = {404: {"description": "no such route or vendor"}}

    def route_of(route: str, vendor: str) -> Route:
        found = catalog.routes.get(route)
        if found is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND,
                f"no route {route!r}; routes: {', '.join(catalog.routes) or 'none'}",
            )
        if found.vendor(vendor) is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND,
                f"route {route!r} has no vendor {vendor!r}; its vendors: "
                f"{', '.join(v.vendor for v in found.vendors)}",
            )
        return found

    @router.get("")
    def list_routes() -> list[RouteVendorOut]:
        rows = route_rows(catalog, client, pauses.redis_now(client))
        return [RouteVendorOut.model_validate(row, from_attributes=True) for row in rows]

    @router.post("/{route}/vendors/{vendor}/pin", responses=unknown)
    def pin(route: Name, vendor: Name, body: PinIn, by: str = Depends(caller)) -> RouteVendorOut:
        board.pin(route_of(route, vendor), vendor, body.weight, body.seconds, body.reason, by)
        return _row(route, vendor)

    @router.delete("/{route}/vendors/{vendor}/pin", responses=unknown)
    def unpin(route: Name, vendor: Name, by: str = Depends(caller)) -> RouteVendorOut:
        if not board.unpin(route_of(route, vendor), vendor, by):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"{route}/{vendor} is not pinned")
        return _row(route, vendor)

    def _row(route: str, vendor: str) -> RouteVendorOut:
        rows = route_rows(catalog, client, pauses.redis_now(client))
        [row] = [r for r in rows if (r.route, r.vendor) == (route, vendor)]
        return RouteVendorOut.model_validate(row, from_attributes=True)

    return router
