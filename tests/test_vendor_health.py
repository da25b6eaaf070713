"""Vendor health and circuit breakers, shared by every worker through Redis."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from smsdispatch.config.catalog import Catalog
from smsdispatch.config.routes import BreakerPolicy
from smsdispatch.config.settings import Settings
from smsdispatch.local.simulators import SimulatorServer
from smsdispatch.routing.health import BreakerState, HealthBoard, signal_of
from smsdispatch.sending.pipeline import send_messages
from smsdispatch.vocabulary.outcomes import OutcomeKind
from smsdispatch.workers.app import create_app
from smsdispatch.workers.runtime import Runtime
from tests.test_outbox import add_rows

OK, RETRY, AMBIGUOUS = OutcomeKind.ACCEPTED, OutcomeKind.RETRY, OutcomeKind.AMBIGUOUS
QUICK = BreakerPolicy(
    window_seconds=30,
    min_volume=10,
    failure_ratio=0.5,
    cooldown_seconds=0.3,
    probe_interval_seconds=0.2,
    probes_to_close=2,
)


@pytest.fixture
def board(redis_client: redis.Redis) -> HealthBoard:
    return HealthBoard(redis_client, QUICK)


def open_breaker(board: HealthBoard, vendor: str = "cue") -> None:
    assert board.record(vendor, [RETRY] * 10) is BreakerState.OPEN


def test_answers_are_counted_by_what_they_say_of_the_vendor(board: HealthBoard) -> None:
    board.record("cue", [OK, OK, RETRY, AMBIGUOUS, OutcomeKind.RATE_LIMITED])
    health = board.health("cue")
    assert (health.ok, health.errors, health.timeouts, health.throttles) == (2, 1, 1, 1)
    assert health.failure_share == pytest.approx(0.5)


@pytest.mark.parametrize(
    "kind",
    [
        OutcomeKind.PERMANENT,
        OutcomeKind.VENDOR_REFUSED,
        OutcomeKind.DEFERRED,
        OutcomeKind.OUTSIDE_HOURS,
    ],
)
def test_a_recipients_error_our_limiter_and_opening_hours_say_nothing_of_health(
    kind: OutcomeKind,
) -> None:
    assert signal_of(kind) is None


def test_health_is_per_vendor(board: HealthBoard) -> None:
    board.record("cue", [RETRY, RETRY])
    assert board.health("restcomm").answers == 0


def test_the_breaker_stays_closed_below_the_minimum_volume(board: HealthBoard) -> None:
    assert board.record("cue", [RETRY] * 9) is BreakerState.CLOSED


def test_the_breaker_stays_closed_below_the_failure_ratio(board: HealthBoard) -> None:
    board.record("cue", [OK] * 11)
    assert board.record("cue", [RETRY] * 10) is BreakerState.CLOSED


def test_the_breaker_opens_on_a_sustained_failure_rate_and_says_why(board: HealthBoard) -> None:
    board.record("cue", [OK] * 5)
    assert board.record("cue", [RETRY] * 5 + [AMBIGUOUS] * 5) is BreakerState.OPEN
    breaker = board.breaker("cue")
    assert breaker.state is BreakerState.OPEN
    assert breaker.reason == "10 of 15 answers failed in 30s"


def test_an_open_breaker_lets_nothing_through(board: HealthBoard) -> None:
    open_breaker(board)
    assert board.admit("cue") == (BreakerState.OPEN, False)


def test_after_its_cooldown_a_breaker_lets_one_probe_through_per_interval(
    board: HealthBoard,
) -> None:
    open_breaker(board)
    time.sleep(QUICK.cooldown_seconds + 0.05)
    assert board.admit("cue") == (BreakerState.HALF_OPEN, True)
    assert board.admit("cue") == (BreakerState.HALF_OPEN, False)
    time.sleep(QUICK.probe_interval_seconds + 0.05)
    assert board.admit("cue") == (BreakerState.HALF_OPEN, True)


def test_a_failed_probe_opens_the_breaker_again(board: HealthBoard) -> None:
    open_breaker(board)
    time.sleep(QUICK.cooldown_seconds + 0.05)
    board.admit("cue")
    assert board.record("cue", [RETRY]) is BreakerState.OPEN
    assert board.breaker("cue").reason == "a probe failed"


def test_enough_good_probes_close_the_breaker(board: HealthBoard) -> None:
    open_breaker(board)
    time.sleep(QUICK.cooldown_seconds + 0.05)
    board.admit("cue")
    assert board.record("cue", [OK]) is BreakerState.HALF_OPEN
    assert board.record("cue", [OK]) is BreakerState.CLOSED
    assert board.admit("cue") == (BreakerState.CLOSED, True)


def test_failures_from_before_the_close_do_not_open_it_again(board: HealthBoard) -> None:
    open_breaker(board)
    time.sleep(QUICK.cooldown_seconds + 0.05)
    board.admit("cue")
    board.record("cue", [OK, OK])
    # The ten failures are still in the window, but before the close.
    assert board.record("cue", [RETRY]) is BreakerState.CLOSED


def test_failures_after_the_close_open_it_again(board: HealthBoard) -> None:
    open_breaker(board)
    time.sleep(QUICK.cooldown_seconds + 0.05)
    board.admit("cue")
    board.record("cue", [OK, OK])
    assert board.record("cue", [RETRY] * 10) is BreakerState.OPEN


def test_an_answer_in_flight_when_the_breaker_opened_does_not_close_it(
    board: HealthBoard,
) -> None:
    open_breaker(board)
    assert board.record("cue", [OK] * 5) is BreakerState.OPEN


def test_health_counts_expire_with_the_longest_window(
    board: HealthBoard, redis_client: redis.Redis
) -> None:
    board.record("cue", [OK])
    ttls = [redis_client.ttl(k) for k in redis_client.scan_iter("smsdispatch:health:cue:*")]
    assert ttls
    assert all(0 < ttl <= QUICK.keep_seconds for ttl in ttls)


def test_a_policy_that_keeps_less_than_its_window_is_refused() -> None:
    with pytest.raises(ValueError, match="keep_seconds must cover"):
        BreakerPolicy(window_seconds=60, keep_seconds=30)


# -- through the send pipeline -------------------------------------------------


@pytest.fixture
def rt(
    settings: Settings, database_url: str, catalog: Catalog, redis_client: redis.Redis
) -> Iterator[Runtime]:
    settings = settings.model_copy(update={"database_url": database_url})
    runtime = Runtime(settings, catalog, create_app(settings))
    yield runtime
    runtime.close()


def test_every_send_counts_towards_its_vendors_health(
    rt: Runtime, simulators: SimulatorServer
) -> None:
    simulators["cue"].state.control.fail_next = 2  # Cue's documented 500 for two sends
    send_messages(rt, add_rows(rt.db, 5, at=rt.clock()))
    health = rt.health.health("cue")
    assert (health.ok, health.errors) == (3, 2)


def test_a_batch_whose_answers_say_nothing_of_the_vendor_is_not_recorded(
    board: HealthBoard, redis_client: redis.Redis
) -> None:
    assert board.record("cue", [OutcomeKind.PERMANENT, OutcomeKind.DEFERRED]) is None
    assert list(redis_client.scan_iter("smsdispatch:health:*")) == []


def test_the_time_a_vendor_takes_to_answer_is_averaged_over_the_window(
    board: HealthBoard,
) -> None:
    board.record("cue", [OK, OK], [0.2, 0.4])
    board.record("cue", [AMBIGUOUS])  # a timeout: no answer, no time
    assert board.health("cue").answer_seconds == pytest.approx(0.3)


def test_a_vendor_that_never_answered_has_no_answer_time(board: HealthBoard) -> None:
    board.record("cue", [AMBIGUOUS])
    assert board.health("cue").answer_seconds is None


def test_every_send_records_how_long_its_vendor_took_to_answer(
    rt: Runtime, simulators: SimulatorServer
) -> None:
    simulators["cue"].state.control.latency_seconds = 0.2
    send_messages(rt, add_rows(rt.db, 2, at=rt.clock()))
    seconds = rt.health.health("cue").answer_seconds
    assert seconds is not None
    assert 0.2 <= seconds < 2.0
