"""The maintenance tasks in /metrics, since they are out of Flower and the INFO log.

    smsdispatch_maintenance_runs_total{task,outcome}  counter  runs that took their turn:
                                                                ok, database_away, failed
    smsdispatch_maintenance_seconds_since_ok{task}    gauge    since the last run that worked

The sweep, the dispatcher and reconciliation send no Celery events (so
Flower lists sends) and log at INFO only when they change something. Whether
they run at all is what an operator must still see: an alert on
`smsdispatch_maintenance_seconds_since_ok{task="smsdispatch.sweep"} > 60`
catches a beat or a maintenance worker that stopped.

The time of a run is Redis' TIME, written by a script, and its age is
computed at scrape time from Redis' TIME again: one clock, whichever hosts
the worker and the scraper run on (DESIGN.md's rule for shared time).
Best-effort like the other counters: a Redis error is logged, never raised
into the task.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import TypeVar

import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from smsdispatch.monitoring.counters import read_counts
from smsdispatch.store.db import DATABASE_AWAY
from smsdispatch.vocabulary import keys

log = logging.getLogger(__name__)
T = TypeVar("T")

OK, DATABASE_AWAY_OUTCOME, FAILED = "ok", "database_away", "failed"

_RECORD = """
redis.call('HINCRBY', KEYS[1], ARGV[1] .. '|' .. ARGV[2], 1)
if ARGV[2] == 'ok' then
  redis.call('HSET', KEYS[2], ARGV[1], redis.call('TIME')[1])
end
return 1
"""


def record_run(client: redis.Redis, task: str, outcome: str) -> None:
    try:
        client.eval(
            _RECORD,
            2,
            keys.METRICS_MAINTENANCE_RUNS,
            keys.METRICS_MAINTENANCE_LAST_OK,
            task,
            outcome,
        )
    except redis.RedisError:
        log.warning("metrics: could not count a %s run in Redis", task)


def counted(client: redis.Redis, task: str, job: Callable[[], T]) -> Callable[[], T]:
    """`job`, counted by outcome each time it runs (its errors pass through)."""

    def run() -> T:
        try:
            result = job()
        except DATABASE_AWAY:
            record_run(client, task, DATABASE_AWAY_OUTCOME)
            raise
        except Exception:
            record_run(client, task, FAILED)
            raise
        record_run(client, task, OK)
        return result

    return run


class MaintenanceCollector:
    """A prometheus_client custom collector of the maintenance runs."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def collect(self) -> Iterator[Metric]:
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.hgetall(keys.METRICS_MAINTENANCE_RUNS)
            pipe.hgetall(keys.METRICS_MAINTENANCE_LAST_OK)
            pipe.time()
            runs_raw, last_raw, (now, _) = pipe.execute()
        except redis.RedisError:
            log.warning("metrics: Redis did not answer for the maintenance runs")
            return
        runs = CounterMetricFamily(
            "smsdispatch_maintenance_runs",
            "Runs of the maintenance tasks (sweep, dispatch, reconcile) that took their "
            "turn, by outcome: ok, database_away (skipped until the next period), failed.",
            labels=["task", "outcome"],
        )
        for (task, outcome), n in sorted(read_counts(runs_raw).items()):
            runs.add_metric([task, outcome], n)
        yield runs
        since = GaugeMetricFamily(
            "smsdispatch_maintenance_seconds_since_ok",
            "Seconds since the maintenance task's last run that worked (Redis' clock).",
            labels=["task"],
        )
        for task, at in sorted(last_raw.items()):
            since.add_metric([task.decode()], max(0, int(now) - int(at)))
        yield since
