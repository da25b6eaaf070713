"""Rate limits that hold across worker processes, counted at the vendor."""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import select

from smsdispatch.local.processes import wait_until
from smsdispatch.local.simulators import SimulatorServer
from smsdispatch.producer.validation import SendRequest
from smsdispatch.simulators.common import Ceiling, max_in_window
from smsdispatch.store.models import messages
from smsdispatch.vocabulary import keys, names
from tests.integration.stack import Stack, running_stack

pytestmark = pytest.mark.slow

# SMSBuddy's 1000/minute, scaled down so a test takes seconds: 100 per 10 s.
SCALED_SMSBUDDY = {
    "providers": {"smsbuddy": {"account_limit": {"count": 100, "per_seconds": 10, "burst": 5}}}
}
LONG_CODES = [f"1555000000{i}" for i in range(1, 5)]
MESSANGI_POOL = {
    "providers": {
        "messangi": {
            # The short code stays: the catalog's default route sends from it.
            "senders": [
                {"id": "12345", "kind": "short_code"},
                *({"id": n, "kind": "long_code"} for n in LONG_CODES),
            ],
            "pools": {"marketing": LONG_CODES},
        }
    }
}


@pytest.fixture
def stack_factory(
    redis_client: redis.Redis, redis_url: str, simulators: SimulatorServer, tmp_path: Path
) -> Iterator[Any]:
    stacks: list[Any] = []

    def start(catalog: dict[str, Any]) -> Stack:
        context = running_stack(
            redis_url=redis_url,
            database_url=f"sqlite:///{tmp_path}/r.db",
            simulators=simulators,
            tmp_path=tmp_path,
            catalog=catalog,
        )
        stacks.append(context)
        return context.__enter__()

    from smsdispatch.store.migrate import upgrade

    upgrade(f"sqlite:///{tmp_path}/r.db")
    yield start
    for context in stacks:
        context.__exit__(None, None, None)


def smsbuddy_requests(count: int, offset: int = 0, **kw: Any) -> list[SendRequest]:
    return [
        SendRequest(f"+91981234{(offset + i) % 10000:04d}", f"offer {offset + i}", "smsbuddy", **kw)
        for i in range(count)
    ]


def test_three_worker_processes_never_break_the_smsbuddy_ceiling(
    stack_factory: Any, simulators: SimulatorServer
) -> None:
    stack: Stack = stack_factory(SCALED_SMSBUDDY)
    simulators["smsbuddy"].state.control.ceiling = Ceiling(count=100, per_seconds=10)
    for name in ("w2", "w3"):
        stack.start_worker(name, names.queues(["smsbuddy"]), concurrency=1)

    stack.producer.send_batch(smsbuddy_requests(150))
    assert stack.wait_settled(150, timeout=90) == {"accepted": 150}

    sim = simulators["smsbuddy"]
    assert sim.state.throttled == 0  # not one 429
    assert sim.stats(window_seconds=10).max_in_window <= 100


def test_long_codes_send_one_a_second_and_a_pool_of_four_sends_four_a_second(
    stack_factory: Any, simulators: SimulatorServer
) -> None:
    stack: Stack = stack_factory(MESSANGI_POOL)
    stack.producer.send_batch(
        [
            SendRequest(f"+52550000{i:04d}", f"hello {i}", "messangi", sender="pool:marketing")
            for i in range(24)
        ]
    )
    assert stack.wait_settled(24, timeout=60) == {"accepted": 24}

    times: dict[str, list[float]] = defaultdict(list)
    for received in simulators["messangi"].state.received:
        times[received.sender].append(received.at)
    assert sorted(times) == LONG_CODES
    for sender, stamps in times.items():
        stamps.sort()
        gaps = [b - a for a, b in itertools.pairwise(stamps)]
        assert min(gaps) >= 0.97, (sender, min(gaps))  # one a second, within 30 ms
    # Together: about four a second while all four are busy (the busiest 5 s).
    every = [t for stamps in times.values() for t in stamps]
    rate = max_in_window(every, 5.0) / 5.0
    assert 3.5 <= rate <= 4.0, rate
    with stack.db.session() as s:
        used = s.execute(select(messages.c.sender)).scalars().all()
    assert sorted(set(used)) == LONG_CODES  # each row records the long code it went from


def test_one_worker_process_sends_to_two_vendors_at_once(
    stack_factory: Any, simulators: SimulatorServer
) -> None:
    """A task waiting for Cue's slots does not keep Restcomm's task waiting:
    both vendors' requests arrive interleaved, each at its own ceiling."""
    ten_a_second = {"account_limit": {"count": 10, "per_seconds": 1, "burst": 1}}
    stack: Stack = stack_factory({"providers": {"cue": ten_a_second, "restcomm": ten_a_second}})
    cue = [SendRequest(f"+2782123{i:04d}", f"cue {i}", "cue") for i in range(100)]
    restcomm = [SendRequest(f"+1202555{i:04d}", f"rc {i}", "restcomm") for i in range(100)]
    stack.producer.send_batch(cue)  # all of Cue's messages are on the broker first
    stack.producer.send_batch(restcomm)
    assert stack.wait_settled(200, timeout=60) == {"accepted": 200}

    arrivals = {
        vendor: sorted(r.at for r in simulators[vendor].state.received)
        for vendor in ("cue", "restcomm")
    }
    # Side by side, not one after the other (nor in turns of a task each):
    # every 2 s while both are sending, each vendor gets about 20.
    start = max(stamps[0] for stamps in arrivals.values())
    end = min(stamps[-1] for stamps in arrivals.values())
    assert end - start > 6, (start, end)
    window = start
    while window + 2 <= end:
        for vendor, stamps in arrivals.items():
            got = sum(window <= at < window + 2 for at in stamps)
            assert got >= 8, (vendor, round(window - start, 1), got)
        window += 0.5
    for vendor, stamps in arrivals.items():
        assert max_in_window(stamps, 1.0) <= 11, vendor  # the ceiling plus its burst


def test_a_worker_starved_of_cpu_never_sends_its_late_slots_together(
    stack_factory: Any, simulators: SimulatorServer
) -> None:
    """The worker is stopped for half of every second (SIGSTOP, as a host
    whose CPU is taken would stop it): slots that pass while it is stopped
    are not all sent at once when it wakes. Counted at the vendor."""
    ceiling = {"count": 20, "per_seconds": 1, "burst": 2}
    stack: Stack = stack_factory({"providers": {"cue": {"account_limit": ceiling}}})
    [worker] = [p for p in stack.processes if p.name == "worker"]
    stack.producer.send_batch(
        [SendRequest(f"+2782123{i:04d}", f"m {i}", "cue") for i in range(200)]
    )
    done = threading.Event()

    def starve() -> None:
        while not done.is_set():
            os.killpg(worker.pid, signal.SIGSTOP)
            time.sleep(0.5)
            os.killpg(worker.pid, signal.SIGCONT)
            time.sleep(0.5)

    starver = threading.Thread(target=starve, daemon=True)
    starver.start()
    try:
        assert stack.wait_settled(200, timeout=120) == {"accepted": 200}
    finally:
        done.set()
        starver.join()
        os.killpg(worker.pid, signal.SIGCONT)
    stamps = [r.at for r in simulators["cue"].state.received]
    assert max_in_window(stamps, 1.0) <= ceiling["count"] + ceiling["burst"]


def test_a_vendor_429_pauses_it_for_every_worker_and_all_messages_go_later(
    stack_factory: Any, simulators: SimulatorServer, redis_client: redis.Redis
) -> None:
    stack: Stack = stack_factory({})  # the catalog's 1000/min: more than the vendor allows
    simulators["smsbuddy"].state.control.ceiling = Ceiling(count=20, per_seconds=5)
    stack.producer.send_batch(smsbuddy_requests(60))
    wait_until(lambda: redis_client.get(keys.pause("smsbuddy")) is not None, 30, "the pause")
    assert b"throttled" in (redis_client.get(keys.pause("smsbuddy")) or b"")

    assert stack.wait_settled(60, timeout=120) == {"accepted": 60}
    assert simulators["smsbuddy"].state.throttled > 0
    assert len(simulators["smsbuddy"].state.received) == 60


def test_a_one_time_password_behind_a_large_campaign_goes_within_seconds(
    stack_factory: Any, simulators: SimulatorServer
) -> None:
    stack: Stack = stack_factory(SCALED_SMSBUDDY)
    stack.start_worker("urgent", names.queues(["smsbuddy"], bulk=False), concurrency=1)
    stack.producer.send_batch(smsbuddy_requests(250))  # about 26 s at the scaled ceiling
    wait_until(lambda: stack.counts().get("accepted", 0) >= 20, 30, "the campaign to flow")

    started = time.monotonic()
    otp = stack.producer.send(
        SendRequest("+919800000001", "Your code is 482913", "smsbuddy", priority=1)
    )

    def accepted() -> bool:
        with stack.db.session() as s:
            status = s.execute(select(messages.c.status).where(messages.c.id == otp)).scalar()
        return status == "accepted"

    wait_until(accepted, 20, "the one-time password", interval=0.05)
    waited = time.monotonic() - started
    assert waited < 5.0, waited
    assert (
        stack.counts().get("queued", 0) + stack.counts().get("sending", 0) > 0
    )  # campaign still on
