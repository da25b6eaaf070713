"""A worker whose host clock is three minutes off, beside a correct one.

The skewed worker runs under libfaketime (Debian's `faketime`): its wall
clock, and everything Python reads from it, is 180 s behind or ahead. Since
every timestamp one process writes and another compares comes from the
database's clock (smsdispatch/store/clock.py) and the limiter's from Redis TIME, it
delays nothing, sends nothing twice and breaks no ceiling.
"""

from __future__ import annotations

import time

import pytest

from smsdispatch.local.processes import celery_worker, wait_until
from smsdispatch.local.simulators import SimulatorServer
from smsdispatch.producer.validation import SendRequest
from smsdispatch.vocabulary import names
from tests.integration.stack import Stack
from tests.skew import faketime_argv

pytestmark = pytest.mark.slow

VENDORS = ("cue", "messangi", "smsbuddy", "restcomm", "skycore")
CUE_LONG_CODE = "27821230000"  # one message a second, across every worker
# Without skew this load settles in about 15 s here; a stall caused by the
# skew would last minutes (the skew itself, or the requeue deadline).
SETTLE_WITHIN_SECONDS = 45.0


def start_skewed_worker(stack: Stack, offset: str) -> None:
    queues = [*names.queues(stack.catalog.providers), names.DEFAULT_QUEUE]
    queues.append(names.MAINTENANCE_QUEUE)
    worker = celery_worker(stack.env, stack.log_dir, queues, name="skewed", loglevel="INFO")
    worker.argv[:0] = faketime_argv(offset)
    stack.processes.append(worker.start())


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_worker_three_minutes_behind_delays_nothing_sends_nothing_twice_breaks_no_ceiling(
    stack: Stack, simulators: SimulatorServer
) -> None:
    """Both directions, against a baseline, run in tests/chaos; here the
    direction the issue measured, with a long code's ceiling watched too."""
    offset = "-180s"
    start_skewed_worker(stack, offset)
    # Retries: every Skycore request fails for the first seconds, so both
    # workers write next_attempt_at for rows the other may claim.
    skycore = simulators["skycore"].state.control
    skycore.error_rate, skycore.fail_with = 1.0, "http:500"
    requests = [
        SendRequest(f"+1202555{i:04d}", f"skew {i}", VENDORS[i % len(VENDORS)]) for i in range(500)
    ]
    requests += [
        SendRequest(f"+1202556{i:04d}", f"long code {i}", "cue", sender=CUE_LONG_CODE)
        for i in range(8)
    ]
    started = time.monotonic()
    assert not stack.producer.send_batch(requests).rejected
    wait_until(lambda: simulators["skycore"].state.requests >= 20, 30, "Skycore failing")
    skycore.error_rate = 0.0

    counts = stack.wait_settled(len(requests), timeout=SETTLE_WITHIN_SECONDS)
    elapsed = time.monotonic() - started

    print(f"\nworker {offset}: {len(requests)} settled in {elapsed:.1f}s: {counts}")
    assert counts == {"accepted": len(requests)}
    for vendor in VENDORS:
        stats = simulators[vendor].stats()
        assert stats.duplicate_recipient_texts == 0, vendor
    assert simulators["cue"].stats().max_per_second_by_sender[CUE_LONG_CODE] <= 1
    skewed_log = (stack.log_dir / "skewed.log").read_text()
    assert "sent batch" in skewed_log  # the skewed worker did its share
