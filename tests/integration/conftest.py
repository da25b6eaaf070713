"""The real stack most integration tests run against: workers and beat on
this test's Redis and database (each backend), the simulators in-process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from smsdispatch.local.simulators import SimulatorServer
from tests.integration.stack import Stack, running_stack


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
