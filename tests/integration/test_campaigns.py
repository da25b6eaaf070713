"""Campaigns end to end: real workers and beat, the dispatcher releasing at the
vendor's pace, pause, resume and cancel while messages are in flight, and a
campaign of 100,000 recipients with the Redis backlog measured throughout."""

from __future__ import annotations

import io
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from smsdispatch.campaigns.service import Campaigns, CampaignSpec
from smsdispatch.limits.rates import backlog, vendor_rate
from smsdispatch.local.processes import wait_until
from smsdispatch.local.simulators import SimulatorServer
from smsdispatch.queueing.backlog import RedisProbe
from smsdispatch.vocabulary.status import SETTLED, CampaignStatus
from tests.integration.stack import Stack, running_stack

pytestmark = pytest.mark.slow

SLOW_CUE = {"providers": {"cue": {"account_limit": {"count": 50, "per_seconds": 1, "burst": 5}}}}


def recipients_csv(count: int) -> io.BytesIO:
    lines = ["phone,name"] + [f"+1212{2_000_000 + i:07d},N{i}" for i in range(count)]
    return io.BytesIO(("\n".join(lines) + "\n").encode())


def new_campaign(stack: Stack, count: int, provider: str = "cue") -> tuple[Campaigns, int]:
    service = Campaigns(stack.settings, stack.catalog, stack.db)
    campaign_id = service.create(
        CampaignSpec(name="it", provider=provider, template="Hi {name}, sale today")
    )
    assert service.import_csv(campaign_id, recipients_csv(count)).imported == count
    return service, campaign_id


def received(simulators: SimulatorServer, vendor: str) -> Counter[str]:
    return Counter(r.to for r in simulators[vendor].state.received)


def wait_status(service: Campaigns, campaign_id: int, status: str, timeout: float) -> None:
    wait_until(lambda: service.get(campaign_id)["status"] == status, timeout, f"campaign {status}")


@pytest.fixture
def slow_cue_stack(
    redis_client: redis.Redis,
    redis_url: str,
    database_url: str,
    simulators: SimulatorServer,
    tmp_path: Path,
) -> Iterator[Stack]:
    with running_stack(
        redis_url=redis_url,
        database_url=database_url,
        simulators=simulators,
        tmp_path=tmp_path,
        catalog=SLOW_CUE,
        extra_env={"DISPATCH_INTERVAL_SECONDS": "0.5", "CAMPAIGN_BACKLOG_SECONDS": "2"},
    ) as running:
        yield running


def test_pause_stops_sends_within_seconds_and_resume_finishes_sending_each_once(
    slow_cue_stack: Stack, simulators: SimulatorServer
) -> None:
    service, campaign_id = new_campaign(slow_cue_stack, 600)  # 12 s at 50/s
    service.start(campaign_id)
    wait_until(lambda: len(simulators["cue"].state.received) >= 100, 30, "100 sends")

    service.pause(campaign_id)
    time.sleep(3.0)  # what workers had claimed finishes
    after_pause = len(simulators["cue"].state.received)
    time.sleep(2.0)
    assert len(simulators["cue"].state.received) == after_pause
    assert after_pause < 600

    service.resume(campaign_id)
    wait_status(service, campaign_id, CampaignStatus.COMPLETED, 60)
    counts = received(simulators, "cue")
    assert len(counts) == 600
    assert set(counts.values()) == {1}
    assert service.live_counts(campaign_id) == {"accepted": 600}


def test_cancel_stops_sending_and_marks_every_unsent_message_cancelled(
    slow_cue_stack: Stack, simulators: SimulatorServer
) -> None:
    service, campaign_id = new_campaign(slow_cue_stack, 600)
    service.start(campaign_id)
    wait_until(lambda: len(simulators["cue"].state.received) >= 100, 30, "100 sends")

    service.cancel(campaign_id)
    wait_until(
        lambda: set(service.live_counts(campaign_id)) <= {"accepted", "cancelled"},
        10,
        "in-flight sends to finish",
    )
    sent = len(simulators["cue"].state.received)
    time.sleep(2.0)
    assert len(simulators["cue"].state.received) == sent
    counts = service.live_counts(campaign_id)
    assert counts == {"accepted": sent, "cancelled": 600 - sent}
    assert set(received(simulators, "cue").values()) == {1}


# -- a campaign of 100,000 ----------------------------------------------------------

FAST_MESSANGI = {
    "providers": {"messangi": {"account_limit": {"count": 20_000, "per_seconds": 1, "burst": 100}}}
}
HORIZON = 0.5  # seconds of the vendor's rate kept released


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_campaign_of_100000_completes_with_the_redis_backlog_bounded(
    redis_client: redis.Redis,
    redis_url: str,
    database_url: str,
    simulators: SimulatorServer,
    tmp_path: Path,
) -> None:
    total = 100_000
    with running_stack(
        redis_url=redis_url,
        database_url=database_url,
        simulators=simulators,
        tmp_path=tmp_path,
        catalog=FAST_MESSANGI,
        extra_env={
            "DISPATCH_INTERVAL_SECONDS": "0.5",
            "CAMPAIGN_BACKLOG_SECONDS": str(HORIZON),
            # No re-publishing of released messages while they wait their turn.
            "REQUEUE_AFTER_SECONDS": "120",
        },
    ) as stack:
        service, campaign_id = new_campaign(stack, total, provider="messangi")
        bound = backlog(vendor_rate(stack.catalog.get("messangi")), HORIZON)
        with RedisProbe(redis_client, ["sms.messangi"]) as probe:
            service.start(campaign_id)
            wait_status(service, campaign_id, CampaignStatus.COMPLETED, 400)

        campaign = service.get(campaign_id)
        rows = service.live_counts(campaign_id)
        print(f"\npeak ids in Redis {probe.peak_ids} (bound {bound}); counts {rows}")
        # A task's ids stay in Redis from the commit of its results until Celery
        # acknowledges it: at most one task per worker process (2) beyond what
        # the dispatcher keeps released.
        acknowledging = 2 * stack.catalog.get("messangi").task_size
        assert 0 < probe.peak_ids <= bound + acknowledging
        assert sum(n for s, n in rows.items() if s in SETTLED) == total
        assert rows == {"accepted": total}
        assert campaign["counts"] == rows
        assert len(simulators["messangi"].state.received) == total
