"""Quiet hours with the clock faked: messages wait for the window, then go."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from sqlalchemy import select

from smsdispatch.config.catalog import Catalog
from smsdispatch.config.settings import Settings
from smsdispatch.local.catalogs import catalog_data
from smsdispatch.local.simulators import SimulatorServer
from smsdispatch.producer.api import Producer
from smsdispatch.producer.validation import SendRequest
from smsdispatch.sending.pipeline import send_messages
from smsdispatch.store.models import messages
from smsdispatch.store.outbox import take_due
from smsdispatch.workers.runtime import Runtime
from tests.clock import FakeClock, runtime

LATE_EVENING_IN_INDIA = datetime(2026, 11, 22, 17, 0, tzinfo=UTC)  # 22:30 IST
TEN_AM_IN_INDIA = datetime(2026, 11, 23, 4, 30, tzinfo=UTC)


def catalog_with(overrides: dict[str, Any]) -> Catalog:
    return Catalog.model_validate(catalog_data(overrides))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(LATE_EVENING_IN_INDIA)


@pytest.fixture
def rt(
    settings: Settings,
    database_url: str,
    catalog: Catalog,
    clock: FakeClock,
    redis_client: redis.Redis,
) -> Iterator[Runtime]:
    runtime_ = runtime(settings, database_url, catalog, clock)
    yield runtime_
    runtime_.close()


def store(rt: Runtime, count: int) -> list[int]:
    producer = Producer(rt.settings, rt.catalog, rt.db, rt.celery, clock=rt.clock)
    result = producer.send_batch(
        [SendRequest(f"+91981234{i:04d}", f"offer {i}", "smsbuddy") for i in range(count)]
    )
    return list(result.ids.values())


def rows(rt: Runtime, ids: list[int]) -> list[tuple[str, datetime, int]]:
    with rt.db.session() as s:
        m = messages.c
        result = s.execute(
            select(m.status, m.next_attempt_at, m.attempts).where(m.id.in_(ids)).order_by(m.id)
        )
        return [(r.status, r.next_attempt_at, r.attempts) for r in result]


def due_ids(rt: Runtime, now: datetime) -> list[int]:
    with rt.db.session() as s, s.begin():
        return [mid for mid, *_ in take_due(s, now, 300, 100)]


def test_vendor_451_holds_messages_until_its_window_opens_then_they_go(
    rt: Runtime, clock: FakeClock, simulators: SimulatorServer
) -> None:
    ids = store(rt, 3)
    simulators["smsbuddy"].state.control.fail_next = 1
    simulators["smsbuddy"].state.control.fail_with = "451"

    send_messages(rt, ids)
    assert rows(rt, ids) == [("queued", TEN_AM_IN_INDIA, 0)] * 3

    clock.now = TEN_AM_IN_INDIA - timedelta(minutes=1)
    assert due_ids(rt, clock.now) == []
    clock.now = TEN_AM_IN_INDIA + timedelta(seconds=1)
    assert sorted(due_ids(rt, clock.now)) == ids
    send_messages(rt, ids)
    assert [status for status, _, _ in rows(rt, ids)] == ["accepted"] * 3


def test_declared_quiet_hours_hold_messages_before_asking_the_vendor(
    settings: Settings,
    database_url: str,
    clock: FakeClock,
    simulators: SimulatorServer,
    redis_client: redis.Redis,
) -> None:
    catalog = catalog_with(
        {
            "providers": {
                "smsbuddy": {
                    "quiet_hours": {
                        "start": "21:00",
                        "end": "10:00",
                        "timezone": "Asia/Kolkata",
                        "hold_before_sending": True,
                    }
                }
            }
        }
    )
    rt = runtime(settings, database_url, catalog, clock)
    try:
        ids = store(rt, 2)
        send_messages(rt, ids)
        assert simulators["smsbuddy"].state.requests == 0
        assert rows(rt, ids) == [("queued", TEN_AM_IN_INDIA, 0)] * 2
    finally:
        rt.close()
