"""The real stack most integration tests run against: workers and beat on
this test's Redis and database, the simulators in-process.

Worker processes run on PostgreSQL, the production database, unless a test
asks for SQLite too (`parametrize("database_url", [...], indirect=True)`):
SQLite's own behaviour is the fast suite's (every store test runs on both),
and running each multi-process test twice cost the suite over a minute."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from smsdispatch.local.simulators import SimulatorServer
from tests.conftest import migrated_database
from tests.integration.stack import Stack, running_stack


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from migrated_database(request, tmp_path)


@pytest.fixture
def stack(
    redis_client: redis.Redis,
    redis_url: str,
    database_url: str,
    simulators: SimulatorServer,
    tmp_path: Path,
) -> Iterator[Stack]:
    with running_stack(
        redis_url=redis_url, database_url=database_url, simulators=simulators, tmp_path=tmp_path
    ) as running:
        yield running
