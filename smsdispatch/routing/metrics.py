"""Routing's state for Prometheus: weights, breakers and health, read from Redis on scrape.

    smsdispatch_route_weight{route,vendor}          gauge  current weight
    smsdispatch_route_resting_weight{route,vendor}  gauge  the catalog's weight
    smsdispatch_breaker_state{vendor,state}         gauge  1 for the breaker's state, else 0
    smsdispatch_vendor_answers{vendor,signal}       gauge  answers in the breaker's window,
                                                           by signal (ok, error, timeout, throttle)

Registered beside the cluster's collector by the processes that serve
/metrics (the HTTP API, `smsdispatch metrics`). A scrape costs, per vendor of
a route, one HGETALL (breaker) and one pipeline of HMGETs (a window's
buckets), and one HGETALL per route (weights).
"""

from __future__ import annotations

from collections.abc import Iterator

import redis
from prometheus_client.core import GaugeMetricFamily, Metric

from smsdispatch.config.catalog import Catalog
from smsdispatch.config.settings import Settings
from smsdispatch.routing.health import BreakerState, HealthBoard, Signal
from smsdispatch.routing.weights import WeightBoard


class RoutingCollector:
    """A prometheus_client custom collector (it has `collect()`)."""

    def __init__(self, client: redis.Redis, catalog: Catalog) -> None:
        self.catalog = catalog
        self.health = HealthBoard(client, catalog.breaker)
        self.weights = WeightBoard(client, catalog.weights, catalog.breaker)

    def collect(self) -> Iterator[Metric]:
        if not self.catalog.routes:
            return
        try:
            yield from self._weights()
            yield from self._vendors()
        except redis.RedisError:
            return  # smsdispatch_metrics_source_up{source="redis"} says so already

    def _weights(self) -> Iterator[Metric]:
        now = GaugeMetricFamily(
            "smsdispatch_route_weight",
            "A route's current weight for a vendor (moved by health; the resting one "
            "is smsdispatch_route_resting_weight).",
            labels=["route", "vendor"],
        )
        resting = GaugeMetricFamily(
            "smsdispatch_route_resting_weight",
            "A route's weight for a vendor in the catalog.",
            labels=["route", "vendor"],
        )
        for route in self.catalog.routes.values():
            current = self.weights.current(route)
            for choice in route.vendors:
                now.add_metric([route.name, choice.vendor], current[choice.vendor])
                resting.add_metric([route.name, choice.vendor], choice.weight)
        yield now
        yield resting

    def _vendors(self) -> Iterator[Metric]:
        states = GaugeMetricFamily(
            "smsdispatch_breaker_state",
            "1 for the state a vendor's circuit breaker is in, 0 for the others.",
            labels=["vendor", "state"],
        )
        answers = GaugeMetricFamily(
            "smsdispatch_vendor_answers",
            f"A vendor's answers in the last {self.catalog.breaker.window_seconds:.0f}s "
            "by what they say of it (the breaker's window).",
            labels=["vendor", "signal"],
        )
        vendors = sorted({v.vendor for r in self.catalog.routes.values() for v in r.vendors})
        for vendor in vendors:
            state = self.health.breaker(vendor).state
            for each in BreakerState:
                states.add_metric([vendor, each.value], 1 if each is state else 0)
            figures = self.health.health(vendor)
            counts = {
                Signal.OK: figures.ok,
                Signal.ERROR: figures.errors,
                Signal.TIMEOUT: figures.timeouts,
                Signal.THROTTLE: figures.throttles,
            }
            for signal, n in counts.items():
                answers.add_metric([vendor, signal.value], n)
        yield states
        yield answers


def routing_collector(settings: Settings, catalog: Catalog) -> RoutingCollector:
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2)
    return RoutingCollector(client, catalog)
