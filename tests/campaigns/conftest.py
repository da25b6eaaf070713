"""A campaign service and a worker runtime on one database, with a fake clock."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import redis

from smsdispatch.campaigns.service import Campaigns, CampaignSpec
from smsdispatch.config.catalog import Catalog
from smsdispatch.config.settings import Settings
from smsdispatch.workers.runtime import Runtime
from tests.clock import FakeClock, runtime

NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOON)


@pytest.fixture
def rt(
    settings: Settings,
    database_url: str,
    catalog: Catalog,
    clock: FakeClock,
    redis_client: redis.Redis,
) -> Iterator[Runtime]:
    rt_ = runtime(settings, database_url, catalog, clock)
    yield rt_
    rt_.close()


@pytest.fixture
def service(rt: Runtime, clock: FakeClock) -> Campaigns:
    return Campaigns(rt.settings, rt.catalog, rt.db, clock=clock)


def spec(**overrides: object) -> CampaignSpec:
    values: dict[str, object] = {
        "name": "winter sale",
        "provider": "cue",
        "template": "Hi {name}, 20% off today",
        "sender": "CUESMS",
    }
    values.update(overrides)
    return CampaignSpec(**values)  # type: ignore[arg-type]


def csv_of(count: int, start: int = 0) -> io.BytesIO:
    """`count` valid US recipients with names."""
    lines = ["phone,name"] + [
        f"+1212555{1000 + i:04d},Name{i}" for i in range(start, start + count)
    ]
    return io.BytesIO(("\n".join(lines) + "\n").encode())


def campaign_with(service: Campaigns, count: int, **overrides: object) -> int:
    campaign_id = service.create(spec(**overrides))
    service.import_csv(campaign_id, csv_of(count))
    return campaign_id
