"""Routes in the provider catalog: which vendors may carry a destination."""

from __future__ import annotations

from typing import Any

import phonenumbers
import pytest
from pydantic import ValidationError

from smsdispatch.config.catalog import Catalog, load_catalog
from smsdispatch.config.routes import NoRouteError
from smsdispatch.config.settings import DEFAULT_CATALOG

PROVIDERS: dict[str, Any] = {
    "cue": {"senders": [{"id": "CUESMS", "kind": "alphanumeric"}]},
    "restcomm": {
        "senders": [
            {"id": "55555", "kind": "short_code"},
            {"id": "19876543212", "kind": "long_code"},
            {"id": "19876543213", "kind": "long_code"},
        ],
        "pools": {"longs": ["19876543212", "19876543213"]},
    },
}


def catalog(routes: dict[str, Any]) -> Catalog:
    return Catalog.model_validate({"providers": PROVIDERS, "routes": routes})


def via(vendor: str, sender: str, weight: int = 50, **extra: Any) -> dict[str, Any]:
    return {"vendor": vendor, "sender": sender, "weight": weight, **extra}


ROUTES: dict[str, Any] = {
    "us": {"destinations": ["+1"], "vendors": [via("restcomm", "55555")]},
    "bahamas": {"destinations": ["+1242"], "vendors": [via("cue", "CUESMS")]},
    "uk": {"destinations": ["GB"], "vendors": [via("cue", "CUESMS")]},
    "rest": {"destinations": ["default"], "vendors": [via("cue", "CUESMS")]},
}


def test_the_longest_prefix_wins() -> None:
    table = catalog(ROUTES).route_table
    assert table.route_for("+12425551234").name == "bahamas"
    assert table.route_for("+12025550123").name == "us"


def test_a_number_without_a_prefix_route_takes_its_region_route() -> None:
    assert catalog(ROUTES).route_table.route_for("+447400123456").name == "uk"


def test_a_number_outside_its_regions_plan_takes_its_country_codes_main_region() -> None:
    assert catalog(ROUTES).route_table.route_for("+447700900123").name == "uk"


def test_a_number_without_a_prefix_or_region_route_takes_the_default() -> None:
    assert catalog(ROUTES).route_table.route_for("+33612345678").name == "rest"


def test_without_a_default_an_unrouted_number_is_refused_by_region_not_number() -> None:
    routes = {k: v for k, v in ROUTES.items() if k != "rest"}
    with pytest.raises(NoRouteError) as raised:
        catalog(routes).route_table.route_for("+33612345678")
    assert "FR" in str(raised.value)
    assert "612345678" not in str(raised.value)


def test_a_route_naming_an_unknown_vendor_is_refused_with_its_name() -> None:
    with pytest.raises(ValidationError, match="route 'x' names unknown vendor 'nexmo'"):
        catalog({"x": {"destinations": ["default"], "vendors": [via("nexmo", "A")]}})


def test_a_route_naming_a_sender_its_vendor_lacks_is_refused_with_both_names() -> None:
    with pytest.raises(ValidationError, match="route 'x': cue has no sender or pool 'OTHER'"):
        catalog({"x": {"destinations": ["default"], "vendors": [via("cue", "OTHER")]}})


def test_a_route_may_send_from_a_pool_of_its_vendor() -> None:
    routes = {"x": {"destinations": ["default"], "vendors": [via("restcomm", "pool:longs")]}}
    assert catalog(routes).route_table.route_for("+12025550123").vendors[0].sender == "pool:longs"


def test_a_destination_in_two_routes_is_refused() -> None:
    routes = {
        "a": {"destinations": ["GB"], "vendors": [via("cue", "CUESMS")]},
        "b": {"destinations": ["GB"], "vendors": [via("restcomm", "55555")]},
    }
    with pytest.raises(ValidationError, match="destination 'GB' is in two routes"):
        catalog(routes)


@pytest.mark.parametrize("destination", ["44", "+0", "gb", "GBR", "*", ""])
def test_a_destination_that_is_no_prefix_region_or_default_is_refused(destination: str) -> None:
    with pytest.raises(ValidationError, match=r"is neither .default., an E\.164 prefix"):
        catalog({"x": {"destinations": [destination], "vendors": [via("cue", "CUESMS")]}})


def test_a_route_preferring_the_cheapest_must_price_every_vendor() -> None:
    vendors = [via("cue", "CUESMS", price_per_segment="0.0070"), via("restcomm", "55555")]
    with pytest.raises(ValidationError, match="does not price restcomm"):
        catalog({"x": {"destinations": ["default"], "prefer": "cheapest", "vendors": vendors}})


def test_a_route_naming_a_vendor_twice_is_refused() -> None:
    vendors = [via("cue", "CUESMS"), via("cue", "CUESMS")]
    with pytest.raises(ValidationError, match="names a vendor twice"):
        catalog({"x": {"destinations": ["default"], "vendors": vendors}})


def test_a_route_whose_weights_are_all_zero_is_refused() -> None:
    with pytest.raises(ValidationError, match="every vendor's weight is 0"):
        catalog({"x": {"destinations": ["default"], "vendors": [via("cue", "CUESMS", 0)]}})


@pytest.mark.parametrize("region", sorted(phonenumbers.SUPPORTED_REGIONS))
def test_the_shipped_catalog_routes_every_region(region: str) -> None:
    example = phonenumbers.example_number(region)
    if example is None:
        pytest.skip(f"phonenumbers has no example number for {region}")
    number = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
    shipped = load_catalog(DEFAULT_CATALOG)
    route = shipped.route_table.route_for(number)
    assert all(v.vendor in shipped.providers for v in route.vendors)


def test_the_shipped_catalog_sends_indian_numbers_over_smsbuddy() -> None:
    route = load_catalog(DEFAULT_CATALOG).route_table.route_for("+919876543210")
    assert [v.vendor for v in route.vendors] == ["smsbuddy"]
