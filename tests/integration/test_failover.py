"""Failover with real workers and the simulators: a message leaves a vendor
only when that vendor certainly did not send it, and reaches one vendor only.

One stack (workers, beat, a database) serves the module: starting it is the
slow part. Before each test the simulators are reset and routing's state in
Redis (health, breakers, pauses, weights) is forgotten; each test reads
back only the messages it sent.

The module's catalog makes failures and recoveries play out in seconds: a
breaker that opens on 10 answers in a 10 s window and cools down in 5 s,
weights that move every second and drift back after 3 quiet seconds
(beat runs `rebalance` every second), six tries per vendor (a message
retried at a failing vendor instead of moved fails in seconds), Cue paused for 30 s on an account
error (so a message that waited for the pause could not pass for one that
moved), and a route `+1303` over Restcomm and Skycore at 10 messages a
second each, weighted 90 to 10, so that only spill-over at send time can
make two vendors carry its batch.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from smsdispatch.limits import pauses
from smsdispatch.local.simulators import SimulatorServer
from smsdispatch.producer.api import Producer
from smsdispatch.producer.validation import SendRequest
from smsdispatch.routing.health import BreakerState, HealthBoard
from smsdispatch.routing.weights import WeightBoard
from smsdispatch.store.migrate import upgrade
from tests.integration.failover import (
    Row,
    attempts,
    first_vendors,
    forget_routing_state,
    received_by,
    send,
    wait_settled,
)
from tests.integration.stack import Stack, running_stack

pytestmark = pytest.mark.slow

ACCOUNT_PAUSE_SECONDS = 30.0
SPILL_RATE = 10  # messages a second, each vendor of the spill route
SPILL_BURST = 1
SPILL_PREFIX = "+1303555"
DEFAULT_PREFIX = "+1202555"  # the default route: Cue, Messangi, Restcomm, Skycore
HANG_SECONDS = 6.0
READ_TIMEOUT_SECONDS = 3.0

# Few tries per vendor: a message that kept retrying at a failing vendor
# instead of moving would fail within seconds, not outlast the test.
MAX_ATTEMPTS = 6
SPILL_LIMIT = {"count": SPILL_RATE, "per_seconds": 1, "burst": SPILL_BURST}

CATALOG = {
    "providers": {
        "cue": {"retry": {"max_attempts": MAX_ATTEMPTS, "pause_seconds": ACCOUNT_PAUSE_SECONDS}},
        "messangi": {"retry": {"max_attempts": MAX_ATTEMPTS}},
        "restcomm": {"retry": {"max_attempts": MAX_ATTEMPTS}, "account_limit": SPILL_LIMIT},
        "skycore": {"retry": {"max_attempts": MAX_ATTEMPTS}, "account_limit": SPILL_LIMIT},
    },
    "routes": {
        "spill": {
            "destinations": ["+1303"],
            "vendors": [
                {"vendor": "restcomm", "sender": "55555", "weight": 90},
                {"vendor": "skycore", "sender": "00000", "weight": 10},
            ],
        }
    },
    "breaker": {
        "window_seconds": 10,
        "min_volume": 10,
        "failure_ratio": 0.5,
        "cooldown_seconds": 5,
        "probe_interval_seconds": 0.5,
        "probes_to_close": 3,
        "bucket_seconds": 1,
        "keep_seconds": 60,
    },
    "weights": {"step": 10, "cooldown_seconds": 1, "recover_after_seconds": 3},
}
ENV = {
    "REBALANCE_INTERVAL_SECONDS": "1",
    # The hang test's vendors answer after HANG_SECONDS: the request left,
    # the answer never came in time.
    "HTTP_READ_TIMEOUT_SECONDS": str(READ_TIMEOUT_SECONDS),
}


@pytest.fixture(scope="module")
def stack(
    redis_url: str,
    simulator_server: SimulatorServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    tmp_path: Path = tmp_path_factory.mktemp("failover")
    database_url = f"sqlite:///{tmp_path / 'results.db'}"
    upgrade(database_url)
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    try:
        with running_stack(
            redis_url=redis_url,
            database_url=database_url,
            simulators=simulator_server,
            tmp_path=tmp_path,
            extra_env=ENV,
            catalog=CATALOG,
        ) as running:
            yield running
    finally:
        client.flushdb()
        client.close()


@pytest.fixture
def client(stack: Stack) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(stack.settings.redis_url)
    yield connection
    connection.close()


@pytest.fixture
def producer(stack: Stack, simulators: SimulatorServer, client: redis.Redis) -> Producer:
    """One producer per test, on routing state of its own (`simulators` reset the vendors)."""
    forget_routing_state(client)
    return stack.producer


def routed(prefix: str, tag: str, count: int, start: int = 0) -> list[SendRequest]:
    return [SendRequest(f"{prefix}{i:04d}", f"{tag} {i}") for i in range(start, start + count)]


def test_a_vendor_answering_5xx_loses_its_traffic_fails_nothing_and_gets_its_weight_back(
    stack: Stack, simulators: SimulatorServer, producer: Producer, client: redis.Redis
) -> None:
    # The issue asks for 95% within 30 s; with this module's breaker (10
    # answers) the traffic has moved well within 10 s.
    failing_for, moved_within, recovery_timeout = 20.0, 10.0, 45.0
    route = stack.catalog.routes["default"]
    resting = route.vendor("cue").weight  # type: ignore[union-attr]
    weights = WeightBoard(client, stack.catalog.weights, stack.catalog.breaker)
    health = HealthBoard(client, stack.catalog.breaker)
    cue = simulators["cue"].state.control
    cue.fail_with, cue.error_rate = "http:503", 1.0

    stream = Stream(producer, "5xx")
    failed_at = time.monotonic()
    stream.run_until(lambda: time.monotonic() - failed_at >= failing_for)
    cue.error_rate = 0.0
    # The stream goes on: its messages carry the probes that close the breaker.
    back = stream.run_until(
        lambda: (
            weights.current(route)["cue"] == resting
            and health.breaker("cue").state is BreakerState.CLOSED
        ),
        timeout=recovery_timeout,
    )
    found = wait_settled(stack.db, stream.ids, timeout=60)
    first = first_vendors(stack.db, stream.ids)

    assert Counter(r.status for r in found.values()) == {"accepted": len(found)}
    tried = attempts(stack.db, stream.ids)
    refused = [i for i in stream.ids if first[i] == "cue" and tried[i][0].outcome == "retry"]
    assert refused, "Cue refused nothing: the failure never showed"
    assert all(found[i].provider != "cue" for i in refused)
    late = [i for i, at in stream.sent_at.items() if moved_within <= at - failed_at < failing_for]
    moved = sum(first[i] != "cue" for i in late) / len(late)
    assert moved >= 0.95, f"{moved:.0%} of {len(late)} messages moved off Cue"
    assert any(c.vendor == "cue" and c.after < c.before for c in weights.changes(500))
    assert back, f"Cue's weight not back at {resting} {recovery_timeout}s after it recovered"
    assert_each_received_once(simulators, found)


def test_a_vendor_answering_no_credit_is_paused_and_its_messages_go_to_the_others_at_once(
    stack: Stack, simulators: SimulatorServer, producer: Producer, client: redis.Redis
) -> None:
    cue = simulators["cue"].state.control
    cue.fail_with, cue.error_rate = "-3", 1.0  # No Credit

    ids = send(producer, routed(DEFAULT_PREFIX, "no credit", 60))
    # Well inside Cue's pause: nothing waited for it to end.
    found = wait_settled(stack.db, ids, timeout=ACCOUNT_PAUSE_SECONDS / 2)
    tried = attempts(stack.db, ids)

    pause = pauses.current_pause(client, "cue", pauses.redis_now(client))
    assert pause is not None
    assert "-3" in pause.reason
    moved = [i for i in ids if any(a.outcome == "account" for a in tried.get(i, []))]
    assert moved, "routing gave Cue none of the messages: nothing to move"
    assert Counter(r.status for r in found.values()) == {"accepted": len(ids)}
    assert not any(found[i].provider == "cue" for i in ids)
    assert not simulators["cue"].state.received
    assert_each_received_once(simulators, found)


def test_a_send_that_hung_after_the_request_left_never_moves_to_another_vendor(
    stack: Stack, simulators: SimulatorServer, producer: Producer
) -> None:
    # Cue takes our reference back (-7): it may be asked again, at Cue.
    # Messangi cannot: its messages become unknown.
    for vendor in ("cue", "messangi"):
        control = simulators[vendor].state.control
        control.hang_next, control.hang_seconds = 1, HANG_SECONDS

    ids = send(producer, routed(DEFAULT_PREFIX, "hang", 60))
    found = wait_settled(stack.db, ids, timeout=45)
    tried = attempts(stack.db, ids)
    vendors = received_by(simulators, found.values())

    hung = [i for i in ids if any(a.code == "ambiguous" for a in tried.get(i, []))]
    assert {found[i].provider for i in hung} == {"cue", "messangi"}
    for i in hung:
        assert vendors[i] == [found[i].provider]
        expected = {"unknown"} if found[i].provider == "messangi" else {"accepted", "unknown"}
        assert found[i].status in expected
    assert_each_received_once(simulators, found)


def test_an_invalid_number_fails_the_message_without_trying_another_vendor(
    stack: Stack, simulators: SimulatorServer, producer: Producer
) -> None:
    cue = simulators["cue"].state.control
    cue.fail_with, cue.error_rate = "-4", 1.0  # Invalid Destination: the recipient's fault

    ids = send(producer, routed(DEFAULT_PREFIX, "invalid", 60))
    found = wait_settled(stack.db, ids, timeout=30)
    tried = attempts(stack.db, ids)
    vendors = received_by(simulators, found.values())

    refused = [i for i in ids if any(a.code == "-4" for a in tried.get(i, []))]
    assert refused, "routing gave Cue none of the messages"
    for i in refused:
        assert (found[i].status, found[i].provider, found[i].error_code) == ("failed", "cue", "-4")
        assert len(tried[i]) == 1
        assert vendors[i] == []
    assert all(found[i].status == "accepted" for i in ids if i not in refused)
    assert_each_received_once(simulators, found)


def test_a_batch_over_two_vendors_takes_about_half_the_time_of_one_without_breaking_a_ceiling(
    stack: Stack, simulators: SimulatorServer, producer: Producer
) -> None:
    count = 10 * SPILL_RATE  # ten seconds of one vendor
    alone = [
        SendRequest(f"{SPILL_PREFIX}{i:04d}", f"alone {i}", "restcomm", "55555")
        for i in range(count)
    ]
    one_vendor, _ = timed(producer, stack, alone)
    two_vendors, found = timed(producer, stack, routed(SPILL_PREFIX, "spill", count))

    assert two_vendors / one_vendor < 0.75, f"{two_vendors:.1f}s over two, {one_vendor:.1f}s alone"
    for vendor in ("restcomm", "skycore"):
        busiest = simulators[vendor].stats(window_seconds=1.0).max_in_window
        assert busiest <= SPILL_RATE + SPILL_BURST, f"{vendor}: {busiest} in one second"
    assert_each_received_once(simulators, found)


# -- helpers -------------------------------------------------------------------


class Stream:
    """A steady stream of routed messages, 10 every half second, each one's
    submission time kept."""

    BATCH, EVERY = 10, 0.5

    def __init__(self, producer: Producer, tag: str) -> None:
        self.producer = producer
        self.tag = tag
        self.ids: list[int] = []
        self.sent_at: dict[int, float] = {}

    def run_until(self, done: Callable[[], bool], timeout: float | None = None) -> bool:
        """Send until `done()`; False if `timeout` seconds passed first."""
        started = time.monotonic()
        while not done():
            if timeout is not None and time.monotonic() - started > timeout:
                return False
            tick = time.monotonic()
            batch = routed(DEFAULT_PREFIX, self.tag, self.BATCH, start=len(self.ids))
            for message_id in send(self.producer, batch):
                self.ids.append(message_id)
                self.sent_at[message_id] = tick
            time.sleep(max(0.0, self.EVERY - (time.monotonic() - tick)))
        return True


def timed(
    producer: Producer, stack: Stack, requests: list[SendRequest]
) -> tuple[float, dict[int, Row]]:
    """Seconds from handing the batch over until every message is settled, and the rows."""
    started = time.monotonic()
    ids = send(producer, requests)
    found = wait_settled(stack.db, ids, timeout=60)
    assert Counter(r.status for r in found.values()) == {"accepted": len(ids)}
    return time.monotonic() - started, found


def assert_each_received_once(simulators: SimulatorServer, found: dict[int, Row]) -> None:
    """No message at two vendors (nor twice at one); an accepted one at the
    vendor its row names."""
    vendors = received_by(simulators, found.values())
    twice = {i: v for i, v in vendors.items() if len(v) > 1}
    assert not twice, f"{len(twice)} messages received more than once: {list(twice.values())[:5]}"
    for i, row in found.items():
        if row.status == "accepted":
            assert vendors[i] == [row.provider]
