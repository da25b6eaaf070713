"""Delivery reports end to end: workers send through the simulators, which report
back to the API's webhooks; every message reaches the final status its vendor
reported. Real worker processes, real Redis, each database, real HTTP."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from smsdispatch.api.app import create_app
from smsdispatch.campaigns.service import Campaigns, CampaignSpec
from smsdispatch.local.processes import wait_until
from smsdispatch.local.serve import BackgroundServer
from smsdispatch.local.simulators import SimulatorServer
from smsdispatch.providers import cue, messangi, restcomm, skycore, smsbuddy
from smsdispatch.providers.reports import ReportTable
from smsdispatch.reports.urls import report_url
from smsdispatch.simulators.common import ReportMix
from smsdispatch.vocabulary.status import FINAL
from tests.integration.stack import Stack, running_stack
from tests.integration.test_end_to_end import VENDORS, requests_for
from tests.settings import make_settings

pytestmark = pytest.mark.slow

SECRET = "integration-report-secret-0123456789"
API_KEY = "integration-api-key-0123456789"
REPORT_TABLES: dict[str, ReportTable] = {
    m.__name__.rsplit(".", 1)[1]: m.REPORT_STATUSES
    for m in (cue, messangi, restcomm, skycore, smsbuddy)
}


@dataclass
class ReportingStack:
    stack: Stack
    api: httpx.Client


@pytest.fixture
def reporting(
    redis_client: redis.Redis,
    redis_url: str,
    database_url: str,
    simulators: SimulatorServer,
    tmp_path: Path,
) -> Iterator[ReportingStack]:
    """The stack, the API (webhooks included) served over HTTP, and every
    simulator reporting after a second with a mix of fates."""
    api_settings = make_settings(
        redis_url=redis_url, database_url=database_url, report_secret=SECRET, api_keys=[API_KEY]
    )
    server = BackgroundServer(create_app(api_settings))
    server.start()
    with_url = api_settings.model_copy(update={"public_base_url": server.root})
    for vendor in VENDORS:
        control = simulators[vendor].state.control
        control.reports, control.report_delay_seconds = True, 1.0
        control.report_mix = ReportMix(delivered=2, undelivered=1, expired=1)
        control.report_retry_seconds = 1.0
    simulators["skycore"].state.control.postback_url = report_url(with_url, "skycore")
    try:
        with (
            running_stack(
                redis_url=redis_url,
                database_url=database_url,
                simulators=simulators,
                tmp_path=tmp_path,
                extra_env={"PUBLIC_BASE_URL": server.root, "REPORT_SECRET": SECRET},
            ) as stack,
            httpx.Client(base_url=server.root, headers={"X-API-Key": API_KEY}) as api,
        ):
            yield ReportingStack(stack, api)
    finally:
        server.stop()


def wait_final(stack: Stack, total: int, timeout: float = 90.0) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = stack.counts()
        if sum(n for s, n in counts.items() if s in FINAL) >= total:
            return counts
        time.sleep(0.25)
    raise AssertionError(f"not final after {timeout}s: {stack.counts()}")


def expected(simulators: SimulatorServer, provider: str, tracking_id: str) -> str:
    """The status the vendor's report word for the message's fate means."""
    word = simulators[provider].state.fates[tracking_id].word
    return REPORT_TABLES[provider][word.casefold() if provider == "skycore" else word].value


def test_every_vendors_reports_move_its_messages_to_the_reported_final_status(
    reporting: ReportingStack, simulators: SimulatorServer
) -> None:
    stack = reporting.stack
    result = stack.producer.send_batch(requests_for(VENDORS, 100))
    assert not result.rejected
    wait_final(stack, 100)

    rows = stack.rows()
    for vendor in VENDORS:
        mine = [(status, tid) for _, provider, status, tid in rows if provider == vendor]
        assert len(mine) == 20, vendor
        for status, tracking_id in mine:
            assert tracking_id is not None, vendor
            assert status == expected(simulators, vendor, tracking_id), vendor
        fates = simulators[vendor].state.fates.values()
        # Every report was taken the first time (the webhook waits for a send
        # still being recorded instead of refusing it).
        assert all(f.callbacks and set(f.callbacks) == {200} for f in fates), vendor
    assert {status for _, _, status, _ in rows} >= {"delivered", "undelivered"}


def test_a_message_submitted_over_http_reads_delivered_after_its_report(
    reporting: ReportingStack, simulators: SimulatorServer
) -> None:
    for vendor in VENDORS:
        simulators[vendor].state.control.report_mix = ReportMix()  # all delivered
    submitted = reporting.api.post(
        "/v1/messages", json={"to": "+12025550100", "text": "hello", "provider": "restcomm"}
    )
    assert submitted.status_code == 202
    message_id = submitted.json()["id"]

    deadline = time.monotonic() + 60
    states: list[str] = []
    while time.monotonic() < deadline:
        state = reporting.api.get(f"/v1/messages/{message_id}").json()
        if not states or states[-1] != state["status"]:
            states.append(state["status"])
        if state["status"] == "delivered":
            break
        time.sleep(0.1)
    assert states[-1] == "delivered", states
    assert "accepted" in states
    assert state["vendor_status"] == "delivered"
    assert state["final_at"] is not None


def test_a_campaigns_messages_reach_their_reported_status_and_its_counters_follow(
    reporting: ReportingStack, simulators: SimulatorServer
) -> None:
    stack = reporting.stack
    service = Campaigns(stack.settings, stack.catalog, stack.db)
    campaign_id = service.create(
        CampaignSpec(name="reported", provider="messangi", template="Hi {name}, sale today")
    )
    rows = "phone,name\n" + "".join(f"+1212{2_000_000 + i:07d},N{i}\n" for i in range(200))
    assert service.import_csv(campaign_id, io.BytesIO(rows.encode())).imported == 200
    service.start(campaign_id)

    counts = wait_final(stack, 200)

    assert set(counts) <= FINAL
    for _, provider, status, tracking_id in stack.rows():
        assert tracking_id is not None
        assert status == expected(simulators, provider, tracking_id)
    # One template request per hundred recipients (Messangi's batch endpoint).
    assert simulators["messangi"].state.requests == 2
    wait_until(
        lambda: service.get(campaign_id)["counts"] == service.live_counts(campaign_id),
        20,
        "the campaign's counters to follow the reports",
    )
