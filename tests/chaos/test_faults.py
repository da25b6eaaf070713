"""Each fault an operator meets, on the real pipeline, counted at the vendors.

The short version of `make chaos` (chaos/__main__.py): the same harness, a
few hundred messages across the five vendors and outages of a few seconds.
Each test fails on any loss; on a duplicate at a vendor that deduplicates or
can be asked (Cue, Restcomm); elsewhere on more duplicates than messages in
flight at a killed worker (none for any other fault); and on a stall: a
vendor's messages final later than the baseline plus the fault's duration
plus the sweeper's own deadlines. Each run's table is printed (pytest -s, or
on failure).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from chaos.faults import (
    DatabaseUnreachable,
    FaultUnavailable,
    FlushRedis,
    KillWorker,
    RestartRedis,
    SkewedClock,
    VendorErrors,
    VendorHang,
    libfaketime,
)
from chaos.harness import VENDORS, Harness, Load, RunResult, Scheduled, Timings

pytestmark = pytest.mark.slow

# Eight batches within half a second: each vendor's messages make eight
# tasks spread over both workers, so whichever worker a fault strikes holds
# some, and a skewed worker defers some of SMSBuddy's (its ceiling makes the
# later ones wait longer than a worker holds a message).
LOAD = Load(per_vendor=60, submit_seconds=0.5, wave_seconds=0.0625)
# One worker running every vendor's task at once, 100 messages each: a task
# records its vendor answers only after its last call, so a SIGKILL early on
# always finds answers the database has not seen, at every vendor.
KILL_LOAD = Load(per_vendor=100, workers=1, concurrency=5)
# Shorter than the harness's defaults so each run takes seconds; the read
# timeout stays well above the simulators' 50 ms on a busy machine.
TIMINGS = Timings(
    requeue_after=3.0, sending_deadline=8.0, http_total_timeout=6.0, http_read_timeout=4.0
)
OUTAGE_SECONDS = 5.0


@pytest.fixture(scope="module")
def harness(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    # A database of its own beside the suite's: the harness truncates it per run.
    url = make_url(postgres_url)
    own = url.set(database=f"{url.database}_run").render_as_string(hide_password=False)
    workdir: Path = tmp_path_factory.mktemp("chaos")
    with Harness(own, workdir=workdir, timings=TIMINGS) as running:
        yield running


@pytest.fixture(scope="module")
def baseline(harness: Harness) -> RunResult:
    result = harness.baseline(LOAD, timeout=120)
    print(f"\n{result.table()}")
    assert result.violations() == [], result.table()
    return result


def run(
    harness: Harness, baseline: RunResult, name: str, *schedule: Scheduled, load: Load = LOAD
) -> RunResult:
    result = harness.run(name, load, schedule, baseline=baseline)
    print(f"\n{result.table()}\n(logs: {result.log_dir})")
    return result


def assert_no_violations(result: RunResult) -> None:
    assert result.violations() == [], result.table()


def test_a_worker_killed_mid_batch_loses_nothing_and_duplicates_nothing_at_cue_and_restcomm(
    harness: Harness,
) -> None:
    baseline = harness.baseline(KILL_LOAD, timeout=120)
    assert baseline.violations() == [], baseline.table()
    # When the vendors have taken 40%: Messangi's batch (20%) and about a
    # quarter of every other vendor's task, answers the worker still holds.
    kill = Scheduled(KillWorker(0), at_received=0.4)
    result = run(harness, baseline, "SIGKILL", kill, load=KILL_LOAD)
    assert_no_violations(result)


def test_redis_flushed_mid_send_loses_nothing_and_delays_nothing(
    harness: Harness, baseline: RunResult
) -> None:
    result = run(harness, baseline, "FLUSHALL", Scheduled(FlushRedis(), at_share=0.3))
    assert_no_violations(result)


def test_redis_restarted_empty_mid_send_loses_nothing_and_delays_nothing(
    harness: Harness, baseline: RunResult
) -> None:
    result = run(harness, baseline, "Redis restart", Scheduled(RestartRedis(), at_share=0.3))
    assert_no_violations(result)


def test_postgres_unreachable_mid_send_loses_no_vendor_answer_and_resends_nothing(
    harness: Harness, baseline: RunResult
) -> None:
    outage = DatabaseUnreachable(OUTAGE_SECONDS)
    result = run(harness, baseline, "PostgreSQL cut", Scheduled(outage, at_share=0.3))
    assert_no_violations(result)
    # Part of "no vendor answer lost": the tracking id the vendor gave is recorded.
    assert {v: t.untracked for v, t in result.tallies.items()} == dict.fromkeys(VENDORS, 0)


def test_vendors_answering_503_for_seconds_lose_nothing_and_recover_promptly(
    harness: Harness, baseline: RunResult
) -> None:
    errors = VendorErrors(VENDORS, OUTAGE_SECONDS)
    result = run(harness, baseline, "vendors 503", Scheduled(errors, at_share=0.2))
    assert_no_violations(result)


def test_vendors_hanging_for_seconds_lose_nothing_and_duplicate_nothing_where_avoidable(
    harness: Harness, baseline: RunResult
) -> None:
    hang = VendorHang(VENDORS, OUTAGE_SECONDS)
    result = run(harness, baseline, "vendors hang", Scheduled(hang, at_share=0.2))
    assert_no_violations(result)


@pytest.mark.parametrize("offset", [-180, 180], ids=["behind", "ahead"])
def test_a_worker_with_its_clock_180_s_off_delays_nothing_and_duplicates_nothing(
    harness: Harness, baseline: RunResult, offset: int
) -> None:
    try:
        library = libfaketime()
    except FaultUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    skew = SkewedClock(offset, index=1, library=library)
    result = run(harness, baseline, f"clock {offset:+d} s", Scheduled(skew))
    assert_no_violations(result)
