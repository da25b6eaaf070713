"""The maintenance runs in /metrics: counted by outcome, with the age of the
last run that worked, on Redis' clock."""

from __future__ import annotations

import pytest
import redis
from prometheus_client import CollectorRegistry
from sqlalchemy.exc import OperationalError

from smsdispatch.monitoring.maintenance import MaintenanceCollector, counted
from smsdispatch.vocabulary import keys, names
from tests.settings import unreachable_redis


def registry_of(client: redis.Redis) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MaintenanceCollector(client))
    return registry


def sample(client: redis.Redis, name: str, **labels: str) -> float | None:
    return registry_of(client).get_sample_value(name, labels)


def test_a_run_that_worked_is_counted_and_dates_the_last_good_run(
    redis_client: redis.Redis,
) -> None:
    for _ in range(3):
        assert counted(redis_client, names.SWEEP, lambda: 7)() == 7
    runs = sample(
        redis_client, "smsdispatch_maintenance_runs_total", task=names.SWEEP, outcome="ok"
    )
    assert runs == 3
    age = sample(redis_client, "smsdispatch_maintenance_seconds_since_ok", task=names.SWEEP)
    assert age is not None
    assert 0 <= age <= 1


def test_a_run_without_the_database_is_counted_as_such_and_raises_on(
    redis_client: redis.Redis,
) -> None:
    def away() -> None:
        raise OperationalError("SELECT 1", {}, Exception("refused"))

    with pytest.raises(OperationalError):
        counted(redis_client, names.DISPATCH, away)()
    assert (
        sample(
            redis_client,
            "smsdispatch_maintenance_runs_total",
            task=names.DISPATCH,
            outcome="database_away",
        )
        == 1
    )
    assert (
        sample(redis_client, "smsdispatch_maintenance_seconds_since_ok", task=names.DISPATCH)
        is None
    )


def test_a_failed_run_is_counted_and_its_error_passes_through(redis_client: redis.Redis) -> None:
    def broken() -> None:
        raise ValueError("bug")

    with pytest.raises(ValueError, match="bug"):
        counted(redis_client, names.RECONCILE, broken)()
    failed = sample(
        redis_client, "smsdispatch_maintenance_runs_total", task=names.RECONCILE, outcome="failed"
    )
    assert failed == 1


def test_the_age_is_read_on_redis_clock(redis_client: redis.Redis) -> None:
    now = int(redis_client.time()[0])
    redis_client.hset(keys.METRICS_MAINTENANCE_LAST_OK, names.SWEEP, now - 90)
    age = sample(redis_client, "smsdispatch_maintenance_seconds_since_ok", task=names.SWEEP)
    assert age is not None
    assert 90 <= age <= 91


def test_counting_without_redis_never_fails_the_run() -> None:
    down = unreachable_redis()
    assert counted(down, names.SWEEP, lambda: "done")() == "done"
    assert list(registry_of(down).collect()) == []
