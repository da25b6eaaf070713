"""An answer the vendor's document does not give, end to end: the worker's
pipeline against the Skycore simulator, real Redis and the results database.

Skycore documents one error code (E111); a Failure with any other code may be
an account problem its document leaves out (no balance, a key turned off).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import redis
from sqlalchemy import select

from smsdispatch.config.catalog import Catalog
from smsdispatch.config.settings import Settings
from smsdispatch.limits.pauses import current_pause
from smsdispatch.local.simulators import SimulatorServer
from smsdispatch.producer.api import Producer
from smsdispatch.producer.validation import SendRequest
from smsdispatch.sending.pipeline import send_messages
from smsdispatch.store.models import messages
from smsdispatch.workers.runtime import Runtime
from tests.clock import FakeClock, runtime

WORDS = "Simulated error."  # what the simulator says for a code it does not know


@pytest.fixture
def clock() -> FakeClock:
    # From now, not a fixed date: the producer stamps the rows it stores as
    # due now by the clock it runs on, and the worker must find them due.
    return FakeClock(datetime.now(UTC))


def catalog_with_retry(catalog: Catalog, **retry: object) -> Catalog:
    entry = catalog.get("skycore")
    entry = entry.model_copy(update={"retry": entry.retry.model_copy(update=retry)})
    return catalog.model_copy(update={"providers": {**catalog.providers, "skycore": entry}})


@pytest.fixture
def rt(
    settings: Settings,
    database_url: str,
    catalog: Catalog,
    clock: FakeClock,
    redis_client: redis.Redis,
) -> Iterator[Runtime]:
    tight = catalog_with_retry(catalog, max_attempts=3, undocumented_pause_after=3)
    runtime_ = runtime(settings, database_url, tight, clock)
    yield runtime_
    runtime_.close()


def store(rt: Runtime, count: int) -> list[int]:
    producer = Producer(rt.settings, rt.catalog, rt.db, rt.celery)
    requests = [SendRequest(f"+2782123{i:04d}", f"code {i}", "skycore") for i in range(count)]
    return list(producer.send_batch(requests).ids.values())


def rows(rt: Runtime, ids: list[int]) -> list[tuple[str, int, str | None, str | None]]:
    with rt.db.session() as s:
        m = messages.c
        result = s.execute(
            select(m.status, m.attempts, m.error_code, m.error_reason)
            .where(m.id.in_(ids))
            .order_by(m.id)
        )
        return [(r.status, r.attempts, r.error_code, r.error_reason) for r in result]


def fail_with(simulators: SimulatorServer, code: str, times: int) -> None:
    control = simulators["skycore"].state.control
    control.fail_with, control.fail_next = code, times


def test_an_undocumented_code_across_messages_pauses_the_vendor_and_fails_none(
    rt: Runtime, simulators: SimulatorServer, clock: FakeClock
) -> None:
    ids = store(rt, 3)
    fail_with(simulators, "E200", 3)

    send_messages(rt, ids)

    pause = current_pause(rt.redis, "skycore", clock.now)
    assert pause is not None
    assert pause.reason.startswith(f"undocumented code E200: {WORDS} (for 3 messages")
    assert rows(rt, ids) == [("queued", 1, "E200", f"undocumented code E200: {WORDS}")] * 3


def test_an_unknown_code_on_server_errors_across_messages_is_retried_without_a_pause(
    rt: Runtime, simulators: SimulatorServer, clock: FakeClock
) -> None:
    ids = store(rt, 3)
    fail_with(simulators, "E200@503", 3)  # HTTP 503 carrying a Failure with error-code E200

    send_messages(rt, ids)

    assert current_pause(rt.redis, "skycore", clock.now) is None
    assert [(status, attempts, code) for status, attempts, code, _ in rows(rt, ids)] == [
        ("queued", 1, "E200")
    ] * 3


def test_messages_claimed_while_paused_for_an_undocumented_code_wait_without_a_request(
    rt: Runtime, simulators: SimulatorServer, clock: FakeClock
) -> None:
    ids = store(rt, 3)
    fail_with(simulators, "E200", 3)
    send_messages(rt, ids)
    requests = simulators["skycore"].state.requests

    clock.advance(5)  # past the back-off: the rows are due again
    send_messages(rt, ids)

    assert simulators["skycore"].state.requests == requests
    assert [(status, attempts) for status, attempts, *_ in rows(rt, ids)] == [("queued", 1)] * 3
    assert all(
        str(reason).startswith("skycore paused: undocumented") for *_, reason in rows(rt, ids)
    )


def test_one_message_retried_with_an_undocumented_code_fails_after_its_budget_unpaused(
    rt: Runtime, simulators: SimulatorServer, clock: FakeClock
) -> None:
    [mid] = store(rt, 1)
    fail_with(simulators, "E200", 3)

    for _ in range(3):  # max_attempts; the same message each time counts once
        send_messages(rt, [mid])
        clock.advance(10)

    [(status, attempts, code, reason)] = rows(rt, [mid])
    assert (status, attempts, code) == ("failed", 3, "E200")
    assert reason == f"gave up after 3 attempts: undocumented code E200: {WORDS}"
    assert current_pause(rt.redis, "skycore", clock.now) is None


def test_a_worker_without_skycores_endpoint_holds_its_messages_naming_the_setting(
    rt: Runtime,
    settings: Settings,
    database_url: str,
    clock: FakeClock,
    simulators: SimulatorServer,
) -> None:
    ids = store(rt, 2)
    unset = settings.model_copy(
        update={"skycore": settings.skycore.model_copy(update={"base_url": ""})}
    )
    worker = runtime(unset, database_url, rt.catalog, clock)
    try:
        send_messages(worker, ids)
    finally:
        worker.close()

    assert simulators["skycore"].state.requests == 0
    assert [(status, attempts) for status, attempts, *_ in rows(rt, ids)] == [("queued", 0)] * 2
    pause = current_pause(rt.redis, "skycore", clock.now)
    assert pause is not None
    assert pause.reason == "configuration: SKYCORE__BASE_URL is not set"
