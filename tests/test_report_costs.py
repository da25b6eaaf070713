"""`smsdispatch report`'s cost per vendor: segments sent x the route vendor's price."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import insert, literal, select

from smsdispatch.analytics.queries import ReportFilter, VendorCost, build_report, vendor_costs
from smsdispatch.config.catalog import Catalog
from smsdispatch.config.routes import Route
from smsdispatch.local.catalogs import catalog_data
from smsdispatch.store.db import Database
from smsdispatch.store.destinations import route_of_number
from smsdispatch.store.models import messages

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
CUE, RESTCOMM_UNPRICED, MESSANGI_UK, SMSBUDDY_IN = (
    Decimal("0.0100"),
    None,
    Decimal("0.0300"),
    Decimal("0.0050"),
)
UK, US, INDIA = "+447700900123", "+12125551001", "+919876543210"


def priced_catalog() -> Catalog:
    data = catalog_data()
    data["routes"] = {
        "default": {
            "destinations": ["default"],
            "vendors": [
                {"vendor": "cue", "sender": "CUESMS", "weight": 50, "price_per_segment": str(CUE)},
                {"vendor": "restcomm", "sender": "55555", "weight": 50},
            ],
        },
        "uk": {
            "destinations": ["+44"],
            "vendors": [
                {
                    "vendor": "messangi",
                    "sender": "12345",
                    "weight": 100,
                    "price_per_segment": str(MESSANGI_UK),
                },
            ],
        },
        "india": {
            "destinations": ["IN"],
            "vendors": [
                {
                    "vendor": "smsbuddy",
                    "sender": "SMSBDY",
                    "weight": 100,
                    "price_per_segment": str(SMSBUDDY_IN),
                },
            ],
        },
    }
    return Catalog.model_validate(data)


ROUTES: dict[str, Route] = priced_catalog().routes

# (provider, route, recipient, segments, sent)
MESSAGES: list[tuple[str, str | None, str, int, bool]] = [
    ("cue", "default", US, 2, True),  # routed: cue's default price
    ("cue", None, US, 1, True),  # named: cue on the number's route (default)
    ("cue", None, INDIA, 1, True),  # named, but cue is not on India's route: unpriced
    ("cue", "default", US, 4, False),  # never sent: not billed
    ("messangi", None, UK, 3, True),  # named: the +44 route's price
    ("restcomm", "default", US, 1, True),  # on the route without a price
    ("smsbuddy", None, INDIA, 2, True),  # named: the IN route (by region) price
]


def fill(database: Database) -> None:
    rows: list[dict[str, Any]] = []
    for i, (provider, route, recipient, segments, sent) in enumerate(MESSAGES, start=1):
        rows.append(
            {
                "id": i,
                "provider": provider,
                "sender": "SENDER",
                "route": route,
                "recipient": recipient,
                "text": "x",
                "encoding": "gsm7",
                "segments": segments,
                "status": "accepted" if sent else "failed",
                "priority": 0,
                "attempts": 1,
                "next_attempt_at": T0,
                "created_at": T0,
                "sent_at": T0 + timedelta(seconds=1) if sent else None,
                "updated_at": T0,
            }
        )
    with database.session() as session, session.begin():
        session.execute(insert(messages), rows)


@pytest.fixture
def costs(database: Database) -> dict[str, VendorCost]:
    fill(database)
    with database.session() as session:
        return {c.provider: c for c in vendor_costs(session, ReportFilter(), ROUTES)}


def test_a_routed_message_costs_its_segments_at_its_route_vendors_price(
    costs: dict[str, VendorCost],
) -> None:
    # cue: 2 routed + 1 named on the default route, priced; India's one unpriced.
    assert costs["cue"].cost == (2 + 1) * CUE
    assert costs["cue"].unpriced_segments == 1


def test_a_message_never_sent_is_counted_but_not_billed(costs: dict[str, VendorCost]) -> None:
    sent_cue = [m for m in MESSAGES if m[0] == "cue" and m[4]]
    assert costs["cue"].messages == len([m for m in MESSAGES if m[0] == "cue"])
    assert costs["cue"].sent == len(sent_cue)
    assert costs["cue"].segments == sum(m[3] for m in sent_cue)


def test_an_unrouted_message_takes_its_vendors_price_on_the_numbers_route(
    costs: dict[str, VendorCost],
) -> None:
    assert costs["messangi"].cost == 3 * MESSANGI_UK  # by the +44 prefix
    assert costs["smsbuddy"].cost == 2 * SMSBUDDY_IN  # by the IN region's +91


def test_a_vendor_without_a_price_has_its_segments_unpriced_not_free(
    costs: dict[str, VendorCost],
) -> None:
    assert RESTCOMM_UNPRICED is None
    assert (costs["restcomm"].cost, costs["restcomm"].unpriced_segments) == (Decimal(0), 1)


def test_the_report_has_costs_only_when_given_the_routes(database: Database) -> None:
    fill(database)
    with database.session() as session:
        assert build_report(session, ReportFilter()).costs == []
        priced = build_report(session, ReportFilter(provider="messangi"), routes=ROUTES).costs
    assert [c.provider for c in priced] == ["messangi"]


@pytest.mark.parametrize("number", [UK, US, INDIA, "+27821230001", "+12425550123"])
def test_the_sql_route_of_a_number_is_the_catalogs(database: Database, number: str) -> None:
    table = priced_catalog().route_table
    with database.session() as session:
        found = session.scalar(select(route_of_number(literal(number), table)))
    assert found == table.route_for(number).name
