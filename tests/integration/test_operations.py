"""The operator's windows on a real stack: Flower and /metrics after real sends.

Workers and beat are real processes; Flower is started by the launcher that
`make flower` runs (smsdispatch/monitoring/flower.py), on a free port, on the test Redis.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from smsdispatch.api.app import create_app as create_api
from smsdispatch.local.processes import (
    ManagedProcess,
    flower_process,
    free_port,
    wait_http,
    wait_until,
)
from smsdispatch.local.serve import BackgroundServer
from smsdispatch.local.simulators import SimulatorServer
from smsdispatch.producer.validation import SendRequest
from smsdispatch.store.migrate import upgrade
from smsdispatch.store.models import messages, send_attempts
from smsdispatch.store.outbox import status_counts
from smsdispatch.vocabulary import keys, names
from tests.integration.stack import Stack, running_stack
from tests.settings import TEST_CREDENTIALS

pytestmark = pytest.mark.slow

VENDORS = ("cue", "messangi", "smsbuddy", "restcomm", "skycore")
FLOWER_USER = "operator"
FLOWER_PASSWORD = "flower-pass-0123456789"
CUE_LONG_CODE = "27821230000"


@pytest.fixture
def stack(
    redis_client: redis.Redis, redis_url: str, simulators: SimulatorServer, tmp_path: Path
) -> Iterator[Stack]:
    database_url = f"sqlite:///{tmp_path / 'ops.db'}"
    upgrade(database_url)
    with running_stack(
        redis_url=redis_url, database_url=database_url, simulators=simulators, tmp_path=tmp_path
    ) as running:
        yield running


def probe_requests(count: int) -> list[SendRequest]:
    """Recipients and texts that are easy to search for, across all five vendors."""
    return [
        SendRequest(f"+1202555{7000 + i:04d}", f"probe text {i} for the operator", VENDORS[i % 5])
        for i in range(count)
    ]


# -- Flower ------------------------------------------------------------------


@pytest.fixture
def flower(stack: Stack, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    process: ManagedProcess = flower_process(
        stack.env, tmp_path, port, f"{FLOWER_USER}:{FLOWER_PASSWORD}"
    ).start()
    root = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{root}/healthcheck", timeout=30)
        yield root
    finally:
        process.stop()


def get(url: str, **kwargs: Any) -> httpx.Response:
    return httpx.get(url, timeout=10, **kwargs)


def authed(url: str, **kwargs: Any) -> httpx.Response:
    response = get(url, auth=(FLOWER_USER, FLOWER_PASSWORD), **kwargs)
    assert response.status_code == 200, (url, response.status_code)
    return response


def workers_page(root: str) -> str:
    """Flower's view of the workers, asked of them anew: an empty answer means
    its inspect call timed out on a busy machine, so it is asked again."""
    pages: list[str] = []

    def answered() -> bool:
        pages.append(authed(f"{root}/api/workers", params={"refresh": "1"}).text)
        return pages[-1] != "{}"

    wait_until(answered, 30, "Flower's inspect of the workers to answer")
    return pages[-1]


def flower_tasks(root: str) -> dict[str, dict[str, Any]]:
    return dict(authed(f"{root}/api/tasks").json())


def datatable(root: str) -> httpx.Response:
    """What the tasks page loads into its table."""
    params = {
        "draw": "1",
        "start": "0",
        "length": "1000",
        "search[value]": "",
        "order[0][column]": "0",
        "order[0][dir]": "desc",
        "columns[0][data]": "name",
    }
    return authed(f"{root}/tasks/datatable", params=params)


def test_flower_refuses_without_the_password_and_answers_with_it(flower: str) -> None:
    for path in ("/", "/tasks", "/api/tasks", "/api/workers"):
        assert get(f"{flower}{path}").status_code == 401, path
        wrong = get(f"{flower}{path}", auth=(FLOWER_USER, "not-the-password"))
        assert wrong.status_code == 401, path
    for path in ("/tasks", "/api/tasks"):
        authed(f"{flower}{path}")


def test_flower_shows_named_tasks_with_ids_only_after_real_sends(stack: Stack, flower: str) -> None:
    # The worker's heartbeat arriving in Flower shows its event receiver is
    # connected (maintenance runs send no events: Flower lists sends only).
    def worker_seen() -> bool:
        alive = authed(f"{flower}/api/workers", params={"status": "true"}).json()
        return any(alive.values())

    wait_until(worker_seen, 30, "Flower to see the worker's events")

    requests = probe_requests(40)
    result = stack.producer.send_batch(requests)
    assert not result.rejected
    assert stack.wait_settled(40) == {"accepted": 40}

    def sends_done() -> bool:
        sends = [t for t in flower_tasks(flower).values() if t["name"] == names.SEND]
        return bool(sends) and all(t["state"] == "SUCCESS" for t in sends)

    wait_until(sends_done, 30, "Flower to see the send tasks succeed")
    tasks = flower_tasks(flower)
    sends = {uuid: t for uuid, t in tasks.items() if t["name"] == names.SEND}
    sent_ids: set[int] = set()
    for task in sends.values():
        # Flower shows args as Python's repr: one list of message ids.
        (ids,) = json.loads(task["args"].replace("(", "[").replace(",)", "]").replace(")", "]"))
        sent_ids.update(ids)
    assert sent_ids == set(result.ids.values())

    pages = [
        json.dumps(tasks),
        datatable(flower).text,
        authed(f"{flower}/tasks").text,
        *(authed(f"{flower}/task/{uuid}").text for uuid in sends),
        *(authed(f"{flower}/api/task/info/{uuid}").text for uuid in sends),
        # The workers' configuration and stats, as Flower asks the workers for them.
        workers_page(flower),
    ]
    assert names.SEND in pages[1]  # the tasks page's table names the task readably
    assert names.SEND in pages[-1]  # the workers' registered tasks
    needles = [r.to for r in requests] + [r.to.lstrip("+") for r in requests]
    needles += [r.text for r in requests]
    needles += [secret for fields in TEST_CREDENTIALS.values() for secret in fields.values()]
    found = [(needle, i) for needle in needles for i, page in enumerate(pages) if needle in page]
    assert found == []


# -- /metrics ----------------------------------------------------------------


def scrape(stack: Stack) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """GET /metrics from the HTTP API; {sample name: {sorted labels: value}}."""
    server = BackgroundServer(create_api(stack.settings))
    server.start()
    try:
        response = httpx.get(f"{server.root}/metrics", timeout=10)
    finally:
        server.stop()
    assert response.status_code == 200
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            samples.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return samples


def attempts_by_provider_and_outcome(stack: Stack) -> dict[tuple[str, str], int]:
    m, a = messages.c, send_attempts.c
    with stack.db.session() as session:
        rows = session.execute(
            select(m.provider, a.outcome, func.count())
            .select_from(send_attempts.join(messages, a.message_id == m.id))
            .where(a.outcome != "deferred")  # counted apart: smsdispatch_deferrals_total
            .group_by(m.provider, a.outcome)
        )
        return {(p, o): n for p, o, n in rows}


def test_metrics_after_real_sends_match_the_attempts_and_messages_tables(
    stack: Stack, simulators: SimulatorServer, redis_client: redis.Redis
) -> None:
    control = simulators["skycore"].state.control
    control.fail_next, control.fail_with = 3, "http:500"  # three retries
    requests = probe_requests(40) + [
        SendRequest(f"+2782555{i:04d}", f"long code {i}", "cue", CUE_LONG_CODE) for i in range(3)
    ]
    assert not stack.producer.send_batch(requests).rejected
    stack.wait_settled(len(requests))

    # The database commit comes first, then the batch's one Redis round trip.
    def counted() -> int:
        return sum(int(v) for v in redis_client.hvals(keys.METRICS_SENDS))

    expected = attempts_by_provider_and_outcome(stack)
    wait_until(lambda: counted() == sum(expected.values()), 10, "the last batch's counts")

    samples = scrape(stack)
    sends = {
        (dict(labels)["provider"], dict(labels)["outcome"]): int(value)
        for labels, value in samples["smsdispatch_sends_total"].items()
    }
    assert sends == expected
    assert sends[("skycore", "retry")] == 3

    waited = samples["smsdispatch_limiter_wait_seconds_sum"][(("provider", "cue"),)]
    assert waited >= 1.0  # the long code's second message waited about 1.05 s
    for vendor in VENDORS:
        assert samples["smsdispatch_limiter_wait_seconds_count"][(("provider", vendor),)] > 0

    backlog = {dict(k)["queue"]: v for k, v in samples["smsdispatch_queue_backlog"].items()}
    assert set(backlog) == {
        *names.queues(stack.catalog.providers),
        names.DEFAULT_QUEUE,
        names.MAINTENANCE_QUEUE,
        names.CALLBACKS_QUEUE,
    }
    assert all(backlog[q] == 0 for q in names.queues(stack.catalog.providers))

    with stack.db.session() as session:
        stored = status_counts(session)
    shown = {
        (dict(k)["provider"], dict(k)["status"]): int(v)
        for k, v in samples["smsdispatch_messages"].items()
    }
    assert shown == stored
