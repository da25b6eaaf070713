"""Status callbacks end to end: real worker and beat processes send through the
simulators, which report back to the API's webhooks; every status change of
every message is posted, signed, to the client's receiver, while a receiver
that hangs holds up neither the sends nor the other receiver."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis
from pydantic import SecretStr

from smsdispatch.api.app import create_app
from smsdispatch.callbacks import verify_signature
from smsdispatch.local.processes import wait_until
from smsdispatch.local.serve import BackgroundServer
from smsdispatch.local.simulators import SimulatorServer
from smsdispatch.producer.api import Producer
from smsdispatch.reports.urls import report_url
from smsdispatch.simulators.common import ReportMix
from smsdispatch.vocabulary.status import FINAL
from tests.callback_receiver import SECRET, Receiver, Reply, receiving
from tests.integration.stack import Stack, running_stack
from tests.integration.test_end_to_end import VENDORS, requests_for
from tests.settings import make_settings

pytestmark = pytest.mark.slow

REPORT_SECRET = "integration-report-secret-0123456789"
CALLBACKS = {
    "CALLBACK_SECRET": SECRET,
    "CALLBACK_ALLOW_PRIVATE": "true",
    "CALLBACK_TIMEOUT_SECONDS": "2",
    "CALLBACK_INTERVAL_SECONDS": "0.25",
}


@pytest.fixture
def reporting_stack(
    redis_client: redis.Redis,
    redis_url: str,
    database_url: str,
    simulators: SimulatorServer,
    tmp_path: Path,
) -> Iterator[Stack]:
    """Workers and beat, the API's webhooks, every simulator reporting after 0.5 s."""
    api_settings = make_settings(
        redis_url=redis_url, database_url=database_url, report_secret=REPORT_SECRET
    )
    server = BackgroundServer(create_app(api_settings))
    server.start()
    for vendor in VENDORS:
        control = simulators[vendor].state.control
        control.reports, control.report_delay_seconds = True, 0.5
        control.report_mix = ReportMix(delivered=2, undelivered=1, expired=1)
    with_url = api_settings.model_copy(update={"public_base_url": server.root})
    simulators["skycore"].state.control.postback_url = report_url(with_url, "skycore")
    try:
        with running_stack(
            redis_url=redis_url,
            database_url=database_url,
            simulators=simulators,
            tmp_path=tmp_path,
            extra_env={
                "PUBLIC_BASE_URL": server.root,
                "REPORT_SECRET": REPORT_SECRET,
                **CALLBACKS,
            },
        ) as stack:
            yield stack
    finally:
        server.stop()


def producer_for(stack: Stack) -> Producer:
    settings = stack.settings.model_copy(
        update={"callback_allow_private": True, "callback_secret": SecretStr(SECRET)}
    )
    return Producer(settings, stack.catalog, stack.db, stack.celery)


def changes(receiver: Receiver) -> dict[int, list[tuple[int, str]]]:
    by_message: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for r in receiver.received:
        by_message[r.document["id"]].append((r.document["sequence"], r.document["status"]))
    return by_message


def test_every_status_change_reaches_the_receiver_and_a_hanging_one_holds_up_nothing(
    reporting_stack: Stack,
) -> None:
    stack = reporting_stack
    hang = lambda n, doc: Reply(200, delay=30.0)  # noqa: E731
    with receiving() as quick, receiving(hang) as stuck:
        producer = producer_for(stack)
        quick_ids = producer.send_batch(
            [replace(r, status_callback=quick.url) for r in requests_for(VENDORS, 100)]
        ).ids.values()
        stuck_ids = producer.send_batch(
            [replace(r, status_callback=stuck.url) for r in requests_for(VENDORS, 50, 500)]
        ).ids.values()
        started = time.monotonic()
        counts = stack.wait_settled(150, timeout=60)
        wait_until(
            lambda: sum(n for s, n in stack.counts().items() if s in FINAL) == 150,
            60,
            "every message's final report",
        )
        wait_until(lambda: len(quick.received) >= 200, 60, "the quick receiver's callbacks")
        took = time.monotonic() - started
        got = changes(quick)
        received = list(quick.received)

    assert sum(counts.values()) == 150
    assert sorted(got) == sorted(quick_ids)
    assert not set(got) & set(stuck_ids)
    assert all(verify_signature(r.body, r.signature, SECRET, now=time.time()) for r in received)
    for message_changes in got.values():
        statuses = [status for _, status in sorted(message_changes)]
        assert statuses[0] == "accepted"
        assert statuses[-1] in FINAL
        assert len(statuses) == 2
    assert took < 45
