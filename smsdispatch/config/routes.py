"""Routes: which vendors may carry a destination when a message names none.

A route lists, for some destinations, the vendors that may carry them, each
with the sender it uses on that route, a resting weight (the share of
traffic it gets while every vendor is healthy) and, where the operator knows
it, a price per segment. A destination is an E.164 prefix (`+44`), an ISO
region (`GB`) or `default`; a number takes the route of its longest matching
prefix, else of its region, else the default one. The vendors' documents give
no prices, so the shipped catalog leaves them out: a route that prefers the
cheapest vendor must price every one of its vendors (validated).

Whether a vendor of a route is healthy, and the weights it has now, are not
here: they change by the minute and live in Redis (routing issue, parts 3-4).
The policies that read them are: BreakerPolicy, WeightPolicy, DeliveryPolicy.
"""

from __future__ import annotations

import re
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, model_validator

from smsdispatch.vocabulary.errors import NotFoundError

DEFAULT_DESTINATION = "default"
_PREFIX = re.compile(r"^\+[1-9]\d{0,14}$")
_REGION = re.compile(r"^[A-Z]{2}$")


class Preference(StrEnum):
    WEIGHT = "weight"  # weighted random choice among the healthy vendors
    CHEAPEST = "cheapest"  # the cheapest healthy vendor that meets the quality floor


class RouteVendor(BaseModel):
    model_config = ConfigDict(frozen=True)

    vendor: str
    sender: str
    weight: Annotated[int, Field(ge=0, le=100)]
    price_per_segment: Annotated[Decimal, Field(ge=0)] | None = None


class Route(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    destinations: Annotated[tuple[str, ...], Field(min_length=1)]
    vendors: Annotated[tuple[RouteVendor, ...], Field(min_length=1)]
    prefer: Preference = Preference.WEIGHT
    # The least share of a vendor's recent final reports that must say
    # delivered for it to be chosen on price (`prefer = "cheapest"`) or on
    # speed (priority messages) (routing/choose.py).
    quality_floor: Annotated[float, Field(ge=0, le=1)] = 0.9

    def vendor(self, name: str) -> RouteVendor | None:
        return next((v for v in self.vendors if v.vendor == name), None)

    @model_validator(mode="after")
    def _well_formed(self) -> Route:
        for destination in self.destinations:
            if not (
                destination == DEFAULT_DESTINATION
                or _PREFIX.match(destination)
                or _REGION.match(destination)
            ):
                raise ValueError(
                    f"route {self.name!r}: destination {destination!r} is neither "
                    f"{DEFAULT_DESTINATION!r}, an E.164 prefix like '+44' nor a region like 'GB'"
                )
        names = [v.vendor for v in self.vendors]
        if len(set(names)) != len(names):
            raise ValueError(f"route {self.name!r} names a vendor twice: {names}")
        if not any(v.weight for v in self.vendors):
            raise ValueError(f"route {self.name!r}: every vendor's weight is 0")
        unpriced = [v.vendor for v in self.vendors if v.price_per_segment is None]
        if self.prefer is Preference.CHEAPEST and unpriced:
            raise ValueError(
                f"route {self.name!r} prefers the cheapest vendor but does not price "
                f"{', '.join(unpriced)}: set price_per_segment"
            )
        return self


class BreakerPolicy(BaseModel):
    """When a vendor's circuit breaker opens and closes (routing/health.py).

    Ratio-based with a floor on volume, so that one failure among three
    answers on a quiet night does not open it, and a vendor failing half of a
    busy minute's traffic does. GOV.UK Notify moves weight after more than 50
    errors in 60 s; with the defaults here 20 answers in 30 s of which half
    failed open the breaker.
    """

    model_config = ConfigDict(frozen=True)

    window_seconds: Annotated[float, Field(gt=0)] = 30.0
    min_volume: Annotated[int, Field(ge=1)] = 20
    failure_ratio: Annotated[float, Field(gt=0, le=1)] = 0.5
    cooldown_seconds: Annotated[float, Field(gt=0)] = 30.0
    probe_interval_seconds: Annotated[float, Field(gt=0)] = 2.0
    probes_to_close: Annotated[int, Field(ge=1)] = 3
    # Health counts are kept per bucket of this many seconds of Redis time,
    # for as long as the longest window that reads them.
    bucket_seconds: Annotated[int, Field(ge=1)] = 5
    keep_seconds: Annotated[float, Field(gt=0)] = 900.0

    @model_validator(mode="after")
    def _keeps_its_window(self) -> BreakerPolicy:
        if self.keep_seconds < self.window_seconds + self.bucket_seconds:
            raise ValueError("breaker keep_seconds must cover window_seconds plus one bucket")
        return self


class WeightPolicy(BaseModel):
    """How routes' weights move with health (routing/weights.py).

    As GOV.UK Notify does: bounded steps (10 points), no two changes of one
    vendor's weight within a cooldown, and back towards the resting weight one
    step at a time after a quiet spell (Notify: 15 minutes). A vendor is
    stepped down while its breaker is open, while at least the breaker's
    `min_volume` answers in the window failed at `failure_share` or more, or
    while its deliveries are too often slow (DeliveryPolicy).
    """

    model_config = ConfigDict(frozen=True)

    step: Annotated[int, Field(ge=1, le=100)] = 10
    cooldown_seconds: Annotated[float, Field(ge=0)] = 60.0
    recover_after_seconds: Annotated[float, Field(ge=0)] = 900.0
    failure_share: Annotated[float, Field(gt=0, le=1)] = 0.2
    # Changes kept for operators (a Redis stream, trimmed to about this many).
    keep_changes: Annotated[int, Field(ge=1)] = 10_000


# Times to delivery are counted by how long they took, in these classes (at
# most N seconds each, and one for the later ones): the shares delivered
# within 1, 5 and 10 minutes need 60, 300 and 600; the shorter ones tell a
# vendor delivering one-time passwords in 5 s from one taking 30.
DELIVERY_EDGES: tuple[int, ...] = (5, 10, 20, 30, 60, 120, 300, 600)


class DeliveryPolicy(BaseModel):
    """Over what window delivery figures are read, and when a vendor is slow
    (routing/delivery.py).

    Figures count the final reports received in the last `window_seconds`
    (Redis time, in buckets of `bucket_seconds`); fewer than `min_reports`
    and a vendor has no figures (routing then treats it as unknown, not as
    bad). As GOV.UK Notify does, a vendor whose messages took longer than
    `slow_after_seconds` to deliver for `slow_share` or more of its final
    reports is stepped down (routing/weights.py).
    """

    model_config = ConfigDict(frozen=True)

    window_seconds: Annotated[float, Field(gt=0)] = 900.0
    bucket_seconds: Annotated[int, Field(ge=1)] = 60
    min_reports: Annotated[int, Field(ge=1)] = 20
    slow_after_seconds: int = 300
    slow_share: Annotated[float, Field(gt=0, le=1)] = 0.15

    @property
    def keep_seconds(self) -> int:
        """How long a bucket is kept: as long as a window can reach it."""
        return int(self.window_seconds) + 2 * self.bucket_seconds

    @model_validator(mode="after")
    def _slow_is_a_class_edge(self) -> DeliveryPolicy:
        if self.slow_after_seconds not in DELIVERY_EDGES:
            raise ValueError(
                f"delivery slow_after_seconds must be one of {list(DELIVERY_EDGES)} "
                f"(the classes times to delivery are counted in), not {self.slow_after_seconds}"
            )
        if self.window_seconds < self.bucket_seconds:
            raise ValueError("delivery window_seconds must hold at least one bucket_seconds")
        return self


class NoRouteError(NotFoundError, LookupError):
    def __init__(self, recipient_region: str) -> None:
        super().__init__(
            f"no route carries {recipient_region} and the catalog has no default route: "
            "name a provider, or add a route"
        )


class RouteTable:
    """Routes by destination, for the lookup a message makes when it names no vendor."""

    def __init__(self, routes: dict[str, Route]) -> None:
        self.by_destination: dict[str, Route] = {}
        for route in routes.values():
            for destination in route.destinations:
                other = self.by_destination.setdefault(destination, route)
                if other is not route:
                    raise ValueError(
                        f"destination {destination!r} is in two routes: "
                        f"{other.name!r} and {route.name!r}"
                    )
        # Longest first: +1242 (the Bahamas) before +1.
        self.prefixes = sorted(
            (d for d in self.by_destination if d.startswith("+")), key=len, reverse=True
        )

    def route_for(self, recipient: str) -> Route:
        """The route of an E.164 number: longest prefix, then region, then default."""
        for prefix in self.prefixes:
            if recipient.startswith(prefix):
                return self.by_destination[prefix]
        region = region_of(recipient)
        route = self.by_destination.get(region) or self.by_destination.get(DEFAULT_DESTINATION)
        if route is None:
            raise NoRouteError(region)
        return route


def region_of(recipient: str) -> str:
    """The ISO region of an E.164 number, or 'ZZ' (phonenumbers' unknown).

    A number outside every region's numbering plan (a test range, a block
    allocated after our phonenumbers release) takes its country code's main
    region: a route by region should not depend on how current the
    metadata is.
    """
    try:
        number = phonenumbers.parse(recipient, None)
    except phonenumbers.NumberParseException:
        return "ZZ"
    region = phonenumbers.region_code_for_number(number)
    return str(region or phonenumbers.region_code_for_country_code(number.country_code or 0))
