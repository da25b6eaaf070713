"""Routing's weights, breakers and health on /metrics."""

from __future__ import annotations

import pytest
import redis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from smsdispatch.config.catalog import load_catalog
from smsdispatch.config.settings import DEFAULT_CATALOG
from smsdispatch.routing.health import HealthBoard
from smsdispatch.routing.metrics import RoutingCollector
from smsdispatch.routing.weights import rebalance_routes
from smsdispatch.vocabulary.outcomes import OutcomeKind
from tests.api_server import served_api

CATALOG = load_catalog(DEFAULT_CATALOG)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape(client: redis.Redis) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RoutingCollector(client, CATALOG))
    return samples(generate_latest(registry).decode())


def test_a_failing_vendor_shows_its_open_breaker_lower_weight_and_failed_answers(
    redis_client: redis.Redis,
) -> None:
    HealthBoard(redis_client, CATALOG.breaker).record("cue", [OutcomeKind.RETRY] * 20)
    rebalance_routes(CATALOG, redis_client)
    got = scrape(redis_client)
    assert got[("smsdispatch_route_weight", (("route", "default"), ("vendor", "cue")))] == 15
    assert (
        got[("smsdispatch_route_resting_weight", (("route", "default"), ("vendor", "cue")))] == 25
    )
    assert got[("smsdispatch_breaker_state", (("state", "open"), ("vendor", "cue")))] == 1
    assert got[("smsdispatch_breaker_state", (("state", "closed"), ("vendor", "cue")))] == 0
    assert got[("smsdispatch_vendor_answers", (("signal", "error"), ("vendor", "cue")))] == 20
    assert got[("smsdispatch_breaker_state", (("state", "closed"), ("vendor", "skycore")))] == 1


def test_the_apis_metrics_carry_routing(
    database_url: str, redis_client: redis.Redis, redis_url: str
) -> None:
    with served_api(database_url=database_url, redis_url=redis_url) as http:
        text = http.get("/metrics").text
    got = samples(text)
    assert got[("smsdispatch_route_weight", (("route", "india"), ("vendor", "smsbuddy")))] == 100


def test_each_vendors_mean_time_to_answer_is_exported(redis_client: redis.Redis) -> None:
    HealthBoard(redis_client, CATALOG.breaker).record("cue", [OutcomeKind.ACCEPTED] * 2, [0.1, 0.3])
    seconds = scrape(redis_client)[("smsdispatch_vendor_answer_seconds", (("vendor", "cue"),))]
    assert seconds == pytest.approx(0.2)
