"""Which route a stored number falls in, as SQL, and a route vendor's price.

Cost figures (the campaign preview, `smsdispatch report`) are grouped in the
database, not by loading rows, so the route of a message that was not routed
(it named its vendor, `messages.route` is NULL) must be an SQL expression:
a CASE over the catalog's destinations in `RouteTable.route_for`'s order,
longest E.164 prefix first, then regions, then the default route.

A region is matched by its country calling code when that code belongs to it
alone (IN is +91). A region sharing its code (US, CA and 23 others on +1; GB
with GG, JE, IM on +44) cannot be told apart by a prefix: its numbers fall
through to the default route here. `route_for` parses the number and would
tell them apart; a catalog that prices such a region differently should name
its prefixes too (e.g. "+1" for North America).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import phonenumbers
from sqlalchemy import ColumnElement, String, case, literal, null

from smsdispatch.config.routes import DEFAULT_DESTINATION, Route, RouteTable


def route_of_number(column: ColumnElement[str], table: RouteTable) -> ColumnElement[Any]:
    """The name of the route a number in `column` falls in; NULL for none."""
    whens: list[tuple[ColumnElement[bool], str]] = [
        (column.like(f"{prefix}%"), table.by_destination[prefix].name) for prefix in table.prefixes
    ]
    for destination, route in table.by_destination.items():
        if destination.startswith("+") or destination == DEFAULT_DESTINATION:
            continue
        code = phonenumbers.country_code_for_region(destination)
        if code and phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(code) == (destination,):
            whens.append((column.like(f"+{code}%"), route.name))
    default = table.by_destination.get(DEFAULT_DESTINATION)
    fallback: ColumnElement[Any] = literal(default.name, String) if default is not None else null()
    if not whens:
        return fallback
    return case(*whens, else_=fallback)


def price_of(routes: dict[str, Route], route: str | None, vendor: str) -> Decimal | None:
    """The vendor's price per segment on `route`; None where the catalog gives none
    (no such route, the vendor is not on it, or it has no price there)."""
    found = routes.get(route) if route is not None else None
    choice = found.vendor(vendor) if found is not None else None
    return choice.price_per_segment if choice is not None else None
