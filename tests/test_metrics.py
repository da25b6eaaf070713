"""Prometheus metrics: workers count into Redis per batch; a collector reads the cluster."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import redis
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from sqlalchemy import func, select

from smsdispatch.api.app import create_app as create_api
from smsdispatch.config.catalog import Catalog
from smsdispatch.config.settings import Settings
from smsdispatch.local.processes import ManagedProcess, free_port, wait_http
from smsdispatch.local.serve import BackgroundServer
from smsdispatch.local.simulators import SimulatorServer
from smsdispatch.monitoring.collector import ClusterCollector, cluster_registry, queue_lists
from smsdispatch.monitoring.counters import MetricsBuffer, bucket_of
from smsdispatch.producer.api import Producer
from smsdispatch.producer.validation import SendRequest
from smsdispatch.sending.pipeline import send_messages
from smsdispatch.store.db import Database
from smsdispatch.store.migrate import upgrade
from smsdispatch.store.models import messages, send_attempts
from smsdispatch.store.outbox import status_counts
from smsdispatch.vocabulary import keys, names
from smsdispatch.workers.app import create_app
from smsdispatch.workers.runtime import Runtime
from tests.settings import make_settings, unreachable_redis

CUE_LONG_CODE = "27821230000"  # 1 message/s: the second request waits about 1.05 s
QUEUES = [*names.queues(["cue", "messangi"]), names.DEFAULT_QUEUE]


@pytest.fixture
def rt(
    settings: Settings, database_url: str, catalog: Catalog, redis_client: redis.Redis
) -> Iterator[Runtime]:
    settings = settings.model_copy(update={"database_url": database_url})
    runtime = Runtime(settings, catalog, create_app(settings))
    yield runtime
    runtime.close()


def registry_for(rt: Runtime, queues: list[str] = QUEUES) -> CollectorRegistry:
    return cluster_registry(ClusterCollector(rt.redis, rt.db, queues, db_cache_seconds=0))


def attempts_by_provider_and_outcome(db: Database) -> dict[tuple[str, str], int]:
    m, a = messages.c, send_attempts.c
    with db.session() as session:
        rows = session.execute(
            select(m.provider, a.outcome, func.count())
            .select_from(send_attempts.join(messages, a.message_id == m.id))
            .group_by(m.provider, a.outcome)
        )
        return {(p, o): n for p, o, n in rows}


def store(rt: Runtime, requests: list[SendRequest]) -> list[int]:
    result = Producer(rt.settings, rt.catalog, rt.db, rt.celery, clock=rt.clock).send_batch(
        requests
    )
    assert not result.rejected
    return list(result.ids.values())


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_a_wait_is_counted_in_the_smallest_bucket_that_holds_it() -> None:
    assert [bucket_of(s) for s in (0.0, 0.003, 0.01, 1.05, 2.0, 7.0, 11.0)] == [
        "0.0",
        "0.01",
        "0.01",
        "2.0",
        "2.0",
        "10.0",
        "+Inf",
    ]


def test_sends_and_limiter_waits_reach_redis_in_one_round_trip_per_batch(
    rt: Runtime, simulators: SimulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    metric_pipelines: list[list[tuple[Any, ...]]] = []
    real_pipeline = rt.redis.pipeline

    def spy(*args: Any, **kwargs: Any) -> Any:
        pipe = real_pipeline(*args, **kwargs)
        real_execute = pipe.execute

        def execute(*eargs: Any, **ekwargs: Any) -> Any:
            commands = [c[0] for c in pipe.command_stack]
            if any(str(c[1]).startswith(f"{keys.PREFIX}:metrics") for c in commands):
                metric_pipelines.append(commands)
            return real_execute(*eargs, **ekwargs)

        pipe.execute = execute  # type: ignore[method-assign]
        return pipe

    monkeypatch.setattr(rt.redis, "pipeline", spy)
    ids = store(
        rt,
        [SendRequest(f"+2782555{i:04d}", f"hello {i}", "cue") for i in range(6)]
        + [SendRequest(f"+1202555{i:04d}", f"hi {i}", "messangi") for i in range(4)],
    )
    send_messages(rt, ids)

    assert len(metric_pipelines) == 1
    sends = rt.redis.hgetall(keys.METRICS_SENDS)
    assert sends == {b"cue|accepted": b"6", b"messangi|accepted": b"4"}
    waits = cast(dict[bytes, bytes], rt.redis.hgetall(keys.METRICS_LIMITER_WAITS))
    # One wait observed per request that left (a batch request waits once).
    observed = sum(int(v) for k, v in waits.items() if not k.endswith(b"|sum"))
    assert observed == simulators["cue"].state.requests + simulators["messangi"].state.requests


def deferred_attempts_by_provider_and_reason(db: Database) -> dict[tuple[str, str], int]:
    m, a = messages.c, send_attempts.c
    with db.session() as session:
        rows = session.execute(
            select(m.provider, a.code, func.count())
            .select_from(send_attempts.join(messages, a.message_id == m.id))
            .where(a.outcome == "deferred")
            .group_by(m.provider, a.code)
        )
        return {(p, c): n for p, c, n in rows}


def test_metrics_equal_the_attempts_table_and_show_a_limiter_wait(
    rt: Runtime, simulators: SimulatorServer
) -> None:
    ids = store(
        rt,
        [SendRequest(f"+2782555{i:04d}", f"code {i}", "cue", CUE_LONG_CODE) for i in range(4)]
        + [SendRequest(f"+2782556{i:04d}", f"news {i}", "cue") for i in range(3)],
    )
    simulators["cue"].state.control.fail_next = 1  # one "System Error": a retry
    simulators["cue"].state.control.fail_with = "-1"
    send_messages(rt, ids)

    registry = registry_for(rt)
    expected = attempts_by_provider_and_outcome(rt.db)
    assert {o for _, o in expected} >= {"accepted", "deferred", "retry"}
    for (provider, outcome), n in expected.items():
        if outcome != "deferred":
            assert (
                sample(registry, "smsdispatch_sends_total", provider=provider, outcome=outcome) == n
            )

    # Long code: the first request goes at once, the second waits ~1.05 s
    # (booking the account limit that far ahead too), the third would wait
    # past LIMITER_MAX_WAIT_SECONDS and is deferred instead, as is the fourth.
    def bucket(le: str) -> float | None:
        return sample(registry, "smsdispatch_limiter_wait_seconds_bucket", provider="cue", le=le)

    count = sample(registry, "smsdispatch_limiter_wait_seconds_count", provider="cue")
    total = sample(registry, "smsdispatch_limiter_wait_seconds_sum", provider="cue")
    assert count == 5  # 7 requests, 2 deferred by the limiter
    assert bucket("+Inf") == count
    # The first went at once; the first of the other sender's may too (the
    # two ask within the account's 10 ms interval or not, as the machine
    # schedules them) ...
    assert bucket("0.0") in (1, 2)
    # ...and every other one waited longer than a second: the long code's
    # second booked the account (burst 1: Cue sends one message a request)
    # 1.05 s ahead, and the others take the account's slots after it.
    assert bucket("1.0") in (1, 2)
    assert count - (bucket("1.0") or 0) >= 3
    assert total is not None
    assert total >= 1.0

    with rt.db.session() as session:
        for (provider, status), n in status_counts(session).items():
            assert sample(registry, "smsdispatch_messages", provider=provider, status=status) == n


def test_deferrals_by_our_own_limiter_are_counted_apart_not_as_sends(
    rt: Runtime, simulators: SimulatorServer
) -> None:
    # A long code sends one message a second: of four, the limiter holds back two.
    ids = store(
        rt, [SendRequest(f"+2782555{i:04d}", f"code {i}", "cue", CUE_LONG_CODE) for i in range(4)]
    )
    send_messages(rt, ids)

    registry = registry_for(rt)
    deferred = deferred_attempts_by_provider_and_reason(rt.db)
    assert deferred == {("cue", "rate_limit"): 2}
    assert sample(registry, "smsdispatch_deferrals_total", provider="cue", reason="rate_limit") == 2
    assert sample(registry, "smsdispatch_sends_total", provider="cue", outcome="deferred") is None
    # Every counted send is a request the vendor received.
    sent = sample(registry, "smsdispatch_sends_total", provider="cue", outcome="accepted")
    assert sent == simulators["cue"].state.requests == 2


def test_backlog_is_the_length_of_each_queue_at_every_priority(
    rt: Runtime, redis_client: redis.Redis
) -> None:
    redis_client.rpush("sms.cue", "a", "b", "c")
    redis_client.rpush(queue_lists("sms.cue")[2], "d")  # kombu's priority-6 list
    redis_client.rpush("sms.messangi.priority", "e")

    registry = registry_for(rt)
    backlog = {q: sample(registry, "smsdispatch_queue_backlog", queue=q) for q in QUEUES}
    assert backlog == {
        "sms.cue": 4,
        "sms.cue.priority": 0,
        "sms.messangi": 0,
        "sms.messangi.priority": 1,
        "sms.default": 0,
    }


def test_the_database_count_is_reused_between_scrapes_for_its_cache_period(
    rt: Runtime, redis_client: redis.Redis
) -> None:
    now = [100.0]
    collector = ClusterCollector(rt.redis, rt.db, QUEUES, db_cache_seconds=15, clock=lambda: now[0])
    assert collector.message_counts() == {}
    store(rt, [SendRequest("+27825550001", "hello", "cue")])
    now[0] += 10
    assert collector.message_counts() == {}
    now[0] += 6
    assert collector.message_counts() == {("cue", "queued"): 1}


def test_a_redis_outage_is_reported_not_a_failed_scrape(rt: Runtime) -> None:
    down = unreachable_redis()
    registry = cluster_registry(ClusterCollector(down, rt.db, QUEUES, db_cache_seconds=0))
    assert sample(registry, "smsdispatch_metrics_source_up", source="redis") == 0
    assert sample(registry, "smsdispatch_metrics_source_up", source="database") == 1


def test_a_failed_flush_drops_the_counts_and_keeps_the_batch(rt: Runtime) -> None:
    buffer = MetricsBuffer()
    buffer.count_sends([("cue", "accepted")])
    buffer.observe_wait("cue", 0.2)
    buffer.flush(unreachable_redis())
    assert buffer.empty()


@pytest.fixture
def api_settings(database_url: str, redis_url: str, redis_client: redis.Redis) -> Settings:
    return make_settings(database_url=database_url, redis_url=redis_url)


def test_the_api_serves_metrics_in_the_prometheus_text_format(api_settings: Settings) -> None:
    server = BackgroundServer(create_api(api_settings))
    server.start()
    try:
        response = httpx.get(f"{server.root}/metrics")
    finally:
        server.stop()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'smsdispatch_queue_backlog{queue="sms.skycore.priority"} 0.0' in response.text
    assert 'smsdispatch_metrics_source_up{source="database"} 1.0' in response.text


def test_metrics_demand_the_bearer_token_when_one_is_set(api_settings: Settings) -> None:
    settings = api_settings.model_copy(update={"metrics_token": SecretStr("scrape-token-123")})
    server = BackgroundServer(create_api(settings))
    server.start()
    try:
        missing = httpx.get(f"{server.root}/metrics")
        wrong = httpx.get(f"{server.root}/metrics", headers={"Authorization": "Bearer nope"})
        right = httpx.get(
            f"{server.root}/metrics", headers={"Authorization": "Bearer scrape-token-123"}
        )
    finally:
        server.stop()
    assert (missing.status_code, wrong.status_code, right.status_code) == (401, 401, 200)


def test_the_metrics_command_serves_the_same_figures_on_its_own_port(
    tmp_path: Path, redis_url: str, redis_client: redis.Redis
) -> None:
    database_url = f"sqlite:///{tmp_path / 'metrics.db'}"
    upgrade(database_url)
    redis_client.rpush("sms.restcomm", "x", "y")
    port = free_port()
    env = {**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": database_url}
    process = ManagedProcess(
        "metrics",
        [str(Path(sys.executable).parent / "smsdispatch"), "metrics", "--port", str(port)],
        env,
        tmp_path / "metrics.log",
    ).start()
    try:
        wait_http(f"http://127.0.0.1:{port}/metrics", timeout=30)
        text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    finally:
        process.stop()
    assert 'smsdispatch_queue_backlog{queue="sms.restcomm"} 2.0' in text
    assert 'smsdispatch_metrics_source_up{source="database"} 1.0' in text
