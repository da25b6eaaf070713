"""Routes' weights move with health in bounded steps, and every change is kept."""

from __future__ import annotations

import time

import pytest
import redis

from smsdispatch.config.routes import BreakerPolicy, Route, RouteVendor, WeightPolicy
from smsdispatch.routing.health import HealthBoard
from smsdispatch.routing.weights import Direction, WeightBoard
from smsdispatch.vocabulary.outcomes import OutcomeKind

ROUTE = Route(
    name="default",
    destinations=("default",),
    vendors=(
        RouteVendor(vendor="cue", sender="CUESMS", weight=50),
        RouteVendor(vendor="restcomm", sender="55555", weight=50),
    ),
)
POLICY = WeightPolicy(step=10, cooldown_seconds=0.2, recover_after_seconds=0.4)
BREAKER = BreakerPolicy(min_volume=10, cooldown_seconds=60)


@pytest.fixture
def board(redis_client: redis.Redis) -> WeightBoard:
    return WeightBoard(redis_client, POLICY, BREAKER)


@pytest.fixture
def health(redis_client: redis.Redis) -> HealthBoard:
    return HealthBoard(redis_client, BREAKER)


def test_a_route_starts_at_its_resting_weights(board: WeightBoard) -> None:
    assert board.current(ROUTE) == {"cue": 50, "restcomm": 50}


def test_a_step_down_moves_one_step_and_is_kept_with_its_reason(board: WeightBoard) -> None:
    assert board.move(ROUTE, "cue", Direction.DOWN, "5xx") == 40
    assert board.current(ROUTE) == {"cue": 40, "restcomm": 50}
    [change] = board.changes()
    assert (change.route, change.vendor, change.before, change.after, change.reason) == (
        "default",
        "cue",
        50,
        40,
        "5xx",
    )


def test_no_second_step_within_the_cooldown(board: WeightBoard) -> None:
    board.move(ROUTE, "cue", Direction.DOWN, "5xx")
    assert board.move(ROUTE, "cue", Direction.DOWN, "5xx") is None
    time.sleep(POLICY.cooldown_seconds + 0.05)
    assert board.move(ROUTE, "cue", Direction.DOWN, "5xx") == 30


def test_a_weight_never_goes_below_zero(board: WeightBoard) -> None:
    fast = WeightBoard(board.client, POLICY.model_copy(update={"cooldown_seconds": 0}), BREAKER)
    for _ in range(7):
        fast.move(ROUTE, "cue", Direction.DOWN, "5xx")
    assert fast.current(ROUTE)["cue"] == 0
    assert len(fast.changes(100)) == 5


def test_a_weight_drifts_back_only_after_a_quiet_spell_and_never_past_rest(
    board: WeightBoard,
) -> None:
    board.move(ROUTE, "cue", Direction.DOWN, "5xx")
    assert board.move(ROUTE, "cue", Direction.BACK, "healthy again") is None
    time.sleep(POLICY.recover_after_seconds + 0.05)
    assert board.move(ROUTE, "cue", Direction.BACK, "healthy again") == 50
    time.sleep(POLICY.recover_after_seconds + 0.05)
    assert board.move(ROUTE, "cue", Direction.BACK, "healthy again") is None


def test_rebalance_steps_a_failing_vendor_down_and_leaves_a_healthy_one(
    board: WeightBoard, health: HealthBoard
) -> None:
    health.record("cue", [OutcomeKind.ACCEPTED] * 6 + [OutcomeKind.RETRY] * 4)
    health.record("restcomm", [OutcomeKind.ACCEPTED] * 10)
    assert board.rebalance(ROUTE, health) == ["cue"]
    assert board.current(ROUTE) == {"cue": 40, "restcomm": 50}
    assert board.changes()[0].reason == "4 of 10 answers failed in 30s"


def test_rebalance_steps_down_a_vendor_whose_breaker_is_open(
    board: WeightBoard, health: HealthBoard
) -> None:
    health.record("cue", [OutcomeKind.RETRY] * 10)
    board.rebalance(ROUTE, health)
    assert board.changes()[0].reason.startswith("breaker open: 10 of 10 answers failed")


def test_a_vendor_not_on_the_route_is_refused(board: WeightBoard) -> None:
    with pytest.raises(KeyError, match="no vendor 'skycore'"):
        board.move(ROUTE, "skycore", Direction.DOWN, "x")
