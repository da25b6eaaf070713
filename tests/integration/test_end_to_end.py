"""End to end: real worker processes, real Redis, each database, real HTTP."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from smsdispatch.local.processes import wait_until
from smsdispatch.local.simulators import SimulatorServer
from smsdispatch.producer.validation import SendRequest
from smsdispatch.vocabulary import keys
from tests.integration.stack import Stack, running_stack

# The whole path on both backends: SQLite is what `make demo` and a first
# set-up run on.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True),
]

VENDORS = ("cue", "messangi", "smsbuddy", "restcomm", "skycore")


def requests_for(vendors: tuple[str, ...], count: int, offset: int = 0) -> list[SendRequest]:
    return [
        SendRequest(
            f"+1202555{(offset + i) % 10000:04d}",
            f"message {offset + i}",
            vendors[i % len(vendors)],
        )
        for i in range(count)
    ]


def received_by_recipient(simulators: SimulatorServer, vendor: str) -> Counter[str]:
    return Counter(r.to.lstrip("+") for r in simulators[vendor].state.received)


def test_messages_to_all_five_vendors_are_accepted_once_with_the_vendors_tracking_ids(
    stack: Stack, simulators: SimulatorServer
) -> None:
    result = stack.producer.send_batch(requests_for(VENDORS, 100))
    assert not result.rejected
    stack.wait_settled(100)

    rows = stack.rows()
    assert {status for _, _, status, _ in rows} == {"accepted"}
    for vendor in VENDORS:
        issued = {r.tracking_id for r in simulators[vendor].state.received}
        stored = {tid for _, provider, _, tid in rows if provider == vendor}
        assert len(simulators[vendor].state.received) == 20, vendor
        assert stored == issued, vendor


def test_invalid_messages_are_rejected_while_the_rest_of_the_batch_is_sent(
    stack: Stack, simulators: SimulatorServer
) -> None:
    batch = [
        *requests_for(("cue", "skycore"), 10),
        SendRequest("+1202", "bad number", "cue"),
        SendRequest("+12025550001", "unknown provider", "twilio"),
        SendRequest("+12025550001", "x" * 1000, "skycore"),
        SendRequest("+12025550001", "bad sender", "cue", sender="NOT-A-SENDER-ID"),
    ]
    result = stack.producer.send_batch(batch)
    assert [(r.index, r.field) for r in result.rejected] == [
        (10, "to"),
        (11, "provider"),
        (12, "text"),
        (13, "sender"),
    ]
    stack.wait_settled(10)
    assert stack.counts() == {"accepted": 10}
    assert len(simulators["cue"].state.received) + len(simulators["skycore"].state.received) == 10


def test_vendor_answering_500_for_a_while_is_retried_until_all_are_accepted(
    stack: Stack, simulators: SimulatorServer
) -> None:
    control = simulators["skycore"].state.control
    control.error_rate, control.fail_with = 1.0, "http:500"
    stack.producer.send_batch(requests_for(("skycore",), 40))
    wait_until(lambda: simulators["skycore"].state.requests >= 80, 30, "failed attempts")
    assert simulators["skycore"].state.received == []
    control.error_rate = 0.0

    assert stack.wait_settled(40) == {"accepted": 40}
    assert len(received_by_recipient(simulators, "skycore")) == 40


@pytest.fixture
def impatient_stack(
    redis_client: redis.Redis,
    redis_url: str,
    database_url: str,
    simulators: SimulatorServer,
    tmp_path: Path,
) -> Iterator[Stack]:
    """Workers that give a vendor 3 s to answer (the shared stack's 20 s keep a
    busy machine from looking like a vendor timing out; here that is the point)."""
    with running_stack(
        redis_url=redis_url,
        database_url=database_url,
        simulators=simulators,
        tmp_path=tmp_path,
        extra_env={"HTTP_READ_TIMEOUT_SECONDS": "3", "HTTP_TOTAL_TIMEOUT_SECONDS": "6"},
    ) as running:
        yield running


def test_vendor_timing_out_for_a_while_is_retried_until_all_are_accepted(
    impatient_stack: Stack, simulators: SimulatorServer
) -> None:
    # Cue deduplicates our reference, so a read timeout is safely resent.
    control = simulators["cue"].state.control
    control.hang_next, control.hang_seconds = 10, 8.0
    impatient_stack.producer.send_batch(requests_for(("cue",), 30))
    assert impatient_stack.wait_settled(30) == {"accepted": 30}
    assert sum(received_by_recipient(simulators, "cue").values()) == 30


def test_account_error_pauses_the_vendor_and_fails_nothing(
    stack: Stack, simulators: SimulatorServer, redis_client: redis.Redis
) -> None:
    control = simulators["cue"].state.control
    control.error_rate, control.fail_with = 1.0, "-3"  # No Credit
    stack.producer.send_batch(requests_for(("cue",), 30))
    wait_until(lambda: redis_client.get(keys.pause("cue")) is not None, 20, "the pause")
    assert b"No Credit" in (redis_client.get(keys.pause("cue")) or b"")
    requests_while_paused = simulators["cue"].state.requests
    time.sleep(1.0)
    assert simulators["cue"].state.requests == requests_while_paused  # nothing sent while paused
    control.error_rate = 0.0

    assert stack.wait_settled(30, timeout=60) == {"accepted": 30}
