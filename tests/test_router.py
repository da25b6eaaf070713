"""Routing a batch: one look at Redis, one choice per message."""

from __future__ import annotations

import random
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from smsdispatch.config.catalog import Catalog
from smsdispatch.config.routes import RouteVendor
from smsdispatch.limits import pauses
from smsdispatch.routing.router import Router
from smsdispatch.vocabulary import keys
from smsdispatch.vocabulary.outcomes import OutcomeKind

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def vendor(name: str, sender: str, weight: int) -> dict[str, Any]:
    return {"vendor": name, "sender": sender, "weight": weight}


CATALOG = Catalog.model_validate(
    {
        "providers": {
            "cue": {"senders": [{"id": "CUESMS", "kind": "alphanumeric"}]},
            "restcomm": {"senders": [{"id": "55555", "kind": "short_code"}]},
        },
        "routes": {
            "default": {
                "destinations": ["default"],
                "vendors": [vendor("cue", "CUESMS", 70), vendor("restcomm", "55555", 30)],
            }
        },
        "breaker": {"min_volume": 4, "cooldown_seconds": 0.2, "probe_interval_seconds": 60},
    }
)
ROUTE = CATALOG.routes["default"]


def anyone(_: RouteVendor) -> bool:
    return True


@pytest.fixture
def router(redis_client: redis.Redis) -> Router:
    return Router(CATALOG, redis_client, random.Random(3))


def split(router: Router, n: int = 1000) -> Counter[str]:
    snapshot = router.snapshot(NOW)
    return Counter(
        chosen.vendor if (chosen := snapshot.choose(ROUTE, anyone)) else "none" for _ in range(n)
    )


def test_a_batch_splits_by_the_routes_weights(router: Router) -> None:
    assert 0.66 < split(router)["cue"] / 1000 < 0.74


def test_a_paused_vendor_gets_no_routed_message(router: Router, redis_client: redis.Redis) -> None:
    pauses.pause(redis_client, "cue", 60, "bad key")
    assert split(router) == {"restcomm": 1000}


def test_a_vendor_whose_breaker_is_open_gets_no_routed_message(router: Router) -> None:
    router.health.record("cue", [OutcomeKind.RETRY] * 4)
    assert split(router) == {"restcomm": 1000}


def test_a_half_open_vendor_gets_one_probe_message_per_interval(router: Router) -> None:
    router.health.record("cue", [OutcomeKind.RETRY] * 4)
    time.sleep(CATALOG.breaker.cooldown_seconds + 0.05)
    assert split(router)["cue"] == 1
    assert split(router)["cue"] == 0  # the next probe is an interval away


def test_a_vendor_booked_far_ahead_spills_its_share_to_the_others(
    router: Router, redis_client: redis.Redis
) -> None:
    seconds, micros = redis_client.time()
    redis_client.set(keys.rate_account("cue"), (seconds + 30) * 1_000_000 + micros)
    assert split(router) == {"restcomm": 1000}


def test_when_no_vendor_can_send_now_the_heaviest_that_can_carry_it_holds_it(
    router: Router, redis_client: redis.Redis
) -> None:
    pauses.pause(redis_client, "cue", 60, "bad key")
    pauses.pause(redis_client, "restcomm", 60, "no credit")
    assert split(router) == {"cue": 1000}


def test_a_vendor_that_cannot_carry_the_message_is_never_chosen(router: Router) -> None:
    snapshot = router.snapshot(NOW)
    chosen = {snapshot.choose(ROUTE, lambda v: v.vendor == "restcomm") for _ in range(100)}
    assert {c.vendor for c in chosen if c} == {"restcomm"}
    assert snapshot.choose(ROUTE, lambda _: False) is None


def test_without_redis_messages_are_routed_on_the_resting_weights() -> None:
    unreachable = redis.Redis(port=1, retry=Retry(NoBackoff(), 0))
    snapshot = Router(CATALOG, unreachable, random.Random(3)).snapshot(NOW)
    chosen = Counter(c.vendor for _ in range(1000) if (c := snapshot.choose(ROUTE, anyone)))
    assert 0.66 < chosen["cue"] / 1000 < 0.74


def test_a_batch_that_cannot_send_to_a_half_open_vendor_leaves_its_probe_to_the_next(
    router: Router,
) -> None:
    router.health.record("cue", [OutcomeKind.RETRY] * 4)
    time.sleep(CATALOG.breaker.cooldown_seconds + 0.05)
    snapshot = router.snapshot(NOW)
    not_cue = {snapshot.choose(ROUTE, lambda v: v.vendor != "cue") for _ in range(10)}
    assert {c.vendor for c in not_cue if c} == {"restcomm"}
    assert split(router)["cue"] == 1


RATED = Catalog.model_validate(
    {
        "providers": {
            "cue": {
                "senders": [{"id": "CUESMS", "kind": "alphanumeric"}],
                "account_limit": {"count": 10, "per_seconds": 1},
            },
            "restcomm": {
                "senders": [{"id": "55555", "kind": "short_code"}],
                "account_limit": {"count": 10, "per_seconds": 1},
            },
        },
        "routes": {
            "default": {
                "destinations": ["default"],
                "vendors": [vendor("cue", "CUESMS", 90), vendor("restcomm", "55555", 10)],
            }
        },
    }
)


def test_a_batch_larger_than_a_vendors_two_seconds_spills_to_the_others_as_it_is_routed(
    redis_client: redis.Redis,
) -> None:
    snapshot = Router(RATED, redis_client, random.Random(3)).snapshot(NOW)
    route = RATED.routes["default"]
    chosen = Counter(c.vendor for _ in range(200) if (c := snapshot.choose(route, anyone)))
    # By weight alone Cue would take 180; at 10/s each the two fill alike.
    assert 90 <= chosen["cue"] <= 110, chosen


def test_a_small_batch_still_splits_by_weight(redis_client: redis.Redis) -> None:
    route = RATED.routes["default"]
    cue = 0
    for seed in range(200):
        snapshot = Router(RATED, redis_client, random.Random(seed)).snapshot(NOW)
        chosen = snapshot.choose(route, anyone)
        cue += chosen is not None and chosen.vendor == "cue"
    assert 165 <= cue <= 195


def test_deferred_messages_spill_only_while_the_other_vendor_has_room(
    redis_client: redis.Redis,
) -> None:
    snapshot = Router(RATED, redis_client, random.Random(3)).snapshot(NOW)
    route = RATED.routes["default"]
    moved = [snapshot.failover(route, "cue", anyone, spill=True) for _ in range(50)]
    # Restcomm takes its next 2 s at 10/s (and one more that lands on the edge).
    assert 20 <= sum(m is not None for m in moved) <= 21
    assert {m.vendor for m in moved if m is not None} == {"restcomm"}
