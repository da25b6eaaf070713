"""Routing's state for Prometheus: weights, breakers and health, read from Redis on scrape.

    smsdispatch_route_weight{route,vendor}          gauge  current weight
    smsdispatch_route_resting_weight{route,vendor}  gauge  the catalog's weight
    smsdispatch_breaker_state{vendor,state}         gauge  1 for the breaker's state, else 0
    smsdispatch_vendor_answers{vendor,signal}       gauge  answers in the breaker's window,
                                                           by signal (ok, error, timeout, throttle)
    smsdispatch_vendor_answer_seconds{vendor}       gauge  mean time to answer a send request
                                                           in the breaker's window
    smsdispatch_vendor_final_reports{vendor,outcome}            gauge  final reports in the
                                                    delivery window (delivered, not_delivered)
    smsdispatch_vendor_delivered_share{vendor}                  gauge  of those, delivered
    smsdispatch_vendor_delivered_within_share{vendor,within_seconds}  gauge  of those,
                                                    delivered within 60, 300, 600 s
    smsdispatch_vendor_delivery_seconds{vendor}                 gauge  typical (median) time
                                                    to delivery

The delivery figures (routing/delivery.py) are the ones routing uses; a
vendor with fewer final reports than the catalog's `min_reports` has its
counts but no shares or time (no sample: it has no figures yet).

Registered beside the cluster's collector by the processes that serve
/metrics (the HTTP API, `smsdispatch metrics`). A scrape costs, per vendor of
a route, one HGETALL (breaker) and one pipeline of HMGETs (a window's
buckets), one HGETALL per route (weights), and one script call for every
vendor's delivery figures.
"""

from __future__ import annotations

from collections.abc import Iterator

import redis
from prometheus_client.core import GaugeMetricFamily, Metric

from smsdispatch.config.catalog import Catalog
from smsdispatch.config.settings import Settings
from smsdispatch.routing.delivery import DELIVERED, NOT_DELIVERED, DeliveryBoard
from smsdispatch.routing.health import BreakerState, HealthBoard, Signal
from smsdispatch.routing.weights import WeightBoard

# The delivery SLOs: the shares delivered within 1, 5 and 10 minutes.
SLO_SECONDS = (60, 300, 600)


class RoutingCollector:
    """A prometheus_client custom collector (it has `collect()`)."""

    def __init__(self, client: redis.Redis, catalog: Catalog) -> None:
        self.catalog = catalog
        self.health = HealthBoard(client, catalog.breaker)
        self.weights = WeightBoard(client, catalog.weights, catalog.breaker)
        self.delivery = DeliveryBoard(client, catalog.delivery)

    def collect(self) -> Iterator[Metric]:
        if not self.catalog.routes:
            return
        try:
            yield from self._weights()
            yield from self._vendors()
            yield from self._delivery()
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
        latency = GaugeMetricFamily(
            "smsdispatch_vendor_answer_seconds",
            f"The mean time a vendor took to answer a send request in the last "
            f"{self.catalog.breaker.window_seconds:.0f}s (answers that came; timeouts are "
            "counted in smsdispatch_vendor_answers).",
            labels=["vendor"],
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
            if figures.answer_seconds is not None:
                latency.add_metric([vendor], figures.answer_seconds)
        yield states
        yield answers
        yield latency

    def _delivery(self) -> Iterator[Metric]:
        window = f"{self.catalog.delivery.window_seconds:.0f}s"
        reports = GaugeMetricFamily(
            "smsdispatch_vendor_final_reports",
            f"A vendor's final delivery reports in the last {window}, by outcome.",
            labels=["vendor", "outcome"],
        )
        delivered = GaugeMetricFamily(
            "smsdispatch_vendor_delivered_share",
            f"Of a vendor's final delivery reports in the last {window}, the share "
            "delivered (absent: too few reports).",
            labels=["vendor"],
        )
        within = GaugeMetricFamily(
            "smsdispatch_vendor_delivered_within_share",
            f"Of a vendor's final delivery reports in the last {window}, the share "
            "delivered within so many seconds of its send (absent: too few reports).",
            labels=["vendor", "within_seconds"],
        )
        seconds = GaugeMetricFamily(
            "smsdispatch_vendor_delivery_seconds",
            f"A vendor's typical (median) time to delivery in the last {window} "
            "(absent: too few reports).",
            labels=["vendor"],
        )
        vendors = sorted({v.vendor for r in self.catalog.routes.values() for v in r.vendors})
        for vendor, figures in self.delivery.figures(vendors).items():
            for outcome in (DELIVERED, NOT_DELIVERED):
                reports.add_metric([vendor, outcome], figures.counts.get(outcome, 0))
            if (share := figures.delivered_share) is not None:
                delivered.add_metric([vendor], share)
            for limit in SLO_SECONDS:
                if (part := figures.within_share(limit)) is not None:
                    within.add_metric([vendor, str(limit)], part)
            if (typical := figures.typical_seconds) is not None:
                seconds.add_metric([vendor], typical)
        yield reports
        yield delivered
        yield within
        yield seconds


def routing_collector(settings: Settings, catalog: Catalog) -> RoutingCollector:
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2)
    return RoutingCollector(client, catalog)
