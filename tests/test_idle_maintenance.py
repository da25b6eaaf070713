"""An idle worker and beat, as real processes at INFO: the maintenance tasks
run every second and say nothing, and Flower lists the sends only."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from smsdispatch.local.processes import (
    BIN,
    ManagedProcess,
    celery_worker,
    flower_process,
    free_port,
    wait_http,
    wait_until,
)
from smsdispatch.store.migrate import upgrade
from smsdispatch.vocabulary import keys, names
from smsdispatch.workers.app import create_app
from tests.settings import make_settings

pytestmark = pytest.mark.slow

AUTH = ("admin", "s3cret-pass")
MAINTENANCE = (names.SWEEP, names.DISPATCH, names.RECONCILE, names.REBALANCE)


@pytest.fixture
def env(tmp_path: Path, redis_url: str, redis_client: redis.Redis) -> dict[str, str]:
    url = f"sqlite:///{tmp_path / 'idle.db'}"
    upgrade(url)
    return {**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": url}


@pytest.fixture
def idle_stack(env: dict[str, str], tmp_path: Path) -> Iterator[tuple[Path, Path, str]]:
    """A worker on every queue and beat at INFO, and Flower; their logs and Flower's root."""
    worker = celery_worker(
        env, tmp_path, [names.MAINTENANCE_QUEUE, names.DEFAULT_QUEUE], loglevel="INFO"
    )
    beat_argv = [str(BIN / "celery"), "-A", "smsdispatch.workers.app", "beat"]
    beat_argv += ["--loglevel", "INFO", "-s", str(tmp_path / "schedule")]
    beat = ManagedProcess("beat", beat_argv, env, tmp_path / "beat.log")
    port = free_port()
    flower = flower_process(env, tmp_path, port, ":".join(AUTH))
    running = [p.start() for p in (flower, worker, beat)]
    try:
        wait_http(f"http://127.0.0.1:{port}/healthcheck", timeout=60)
        yield worker.log_path, beat.log_path, f"http://127.0.0.1:{port}"
    finally:
        for process in running:
            process.stop()


def sweeps_seen(client: redis.Redis, seconds: float) -> int:
    """How many sweep turns were taken while we watched (each turn is a key
    with a TTL of half the period)."""
    seen, was_set = 0, False
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        now_set = bool(client.exists(keys.periodic_turn(names.SWEEP)))
        seen += now_set and not was_set
        was_set = now_set
        time.sleep(0.05)
    return seen


def test_an_idle_worker_and_beat_log_nothing_about_maintenance_runs(
    idle_stack: tuple[Path, Path, str], redis_client: redis.Redis
) -> None:
    worker_log, beat_log, _ = idle_stack
    assert sweeps_seen(redis_client, 8.0) >= 4
    worker_lines = worker_log.read_text()
    for task in MAINTENANCE:  # "Task smsdispatch.sweep[<id>] received", "... succeeded"
        assert f"{task}[" not in worker_lines, task
    assert "Sending due task" not in beat_log.read_text()
    assert "beat: Starting..." in beat_log.read_text()  # beat's other INFO lines remain
    # ... and the runs are counted for /metrics (monitoring/maintenance.py).
    counted = redis_client.hget(keys.METRICS_MAINTENANCE_RUNS, f"{names.SWEEP}|ok")
    assert int(counted or 0) >= 4


def test_flower_lists_sends_and_no_maintenance_run(
    idle_stack: tuple[Path, Path, str], redis_client: redis.Redis, redis_url: str
) -> None:
    worker_log, _, flower = idle_stack
    assert sweeps_seen(redis_client, 4.0) >= 2
    # A send of an id that does not exist: claimed by nobody, done at once.
    celery = create_app(make_settings(redis_url=redis_url))
    sent = celery.send_task(names.SEND, args=[[987654321]], queue=names.DEFAULT_QUEUE)

    def listed() -> dict[str, dict[str, object]]:
        answer = httpx.get(f"{flower}/api/tasks", auth=AUTH, timeout=5)
        answer.raise_for_status()
        tasks: dict[str, dict[str, object]] = answer.json()
        return tasks

    wait_until(lambda: listed().get(sent.id, {}).get("state") == "SUCCESS", 30, "the send")
    assert {t["name"] for t in listed().values()} == {names.SEND}
    assert f"{names.SEND}[{sent.id}] succeeded" in worker_log.read_text()  # sends stay at INFO
