"""Cancelling one message no vendor may have received yet (API and CLI):
it is never sent, and a message a worker holds cannot be cancelled."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import select, update

from smsdispatch.config.catalog import Catalog
from smsdispatch.config.settings import Settings
from smsdispatch.local.simulators import SimulatorServer
from smsdispatch.producer.api import Producer
from smsdispatch.producer.validation import SendRequest
from smsdispatch.sending.pipeline import send_messages
from smsdispatch.store.control import Cancel, cancel_unsent
from smsdispatch.store.models import messages
from smsdispatch.store.outbox import claim
from smsdispatch.workers.runtime import Runtime
from tests.api_server import served_api
from tests.clock import FakeClock, runtime
from tests.test_cli import cli_env, run


@pytest.fixture
def rt(
    settings: Settings, database_url: str, catalog: Catalog, redis_client: redis.Redis
) -> Iterator[Runtime]:
    runtime_ = runtime(settings, database_url, catalog, FakeClock(datetime.now(UTC)))
    yield runtime_
    runtime_.close()


@pytest.fixture
def client(rt: Runtime, database_url: str, redis_url: str) -> Iterator[httpx.Client]:
    with served_api(database_url=database_url, redis_url=redis_url) as http:
        yield http


def store(rt: Runtime, count: int) -> list[int]:
    producer = Producer(rt.settings, rt.catalog, rt.db, rt.celery)
    requests = [SendRequest(f"+2782123{i:04d}", f"code {i}", "cue") for i in range(count)]
    return list(producer.send_batch(requests).ids.values())


def status_of(rt: Runtime, message_id: int) -> tuple[str, str | None]:
    with rt.db.session() as s:
        row = s.execute(
            select(messages.c.status, messages.c.error_code).where(messages.c.id == message_id)
        ).one()
        return row.status, row.error_code


def test_a_message_cancelled_over_the_api_is_never_sent(
    rt: Runtime, client: httpx.Client, simulators: SimulatorServer
) -> None:
    kept, cancelled = store(rt, 2)

    response = client.post(f"/v1/messages/{cancelled}/cancel")
    assert response.status_code == 200
    assert response.json() == {"id": cancelled, "status": "cancelled"}

    send_messages(rt, [kept, cancelled])  # the worker that takes both ids off the broker
    received = simulators["cue"].state.received
    assert [r.text for r in received] == ["code 0"]
    assert status_of(rt, cancelled) == ("cancelled", "cancelled")
    assert client.get(f"/v1/messages/{cancelled}").json()["status"] == "cancelled"


def test_a_message_a_worker_has_claimed_cannot_be_cancelled(
    rt: Runtime, client: httpx.Client
) -> None:
    (message_id,) = store(rt, 1)
    with rt.db.session() as s, s.begin():
        assert claim(s, [message_id], rt.db.clock(), "token")

    response = client.post(f"/v1/messages/{message_id}/cancel")
    assert response.status_code == 409
    assert "a worker is sending it" in response.json()["detail"]
    assert status_of(rt, message_id)[0] == "sending"


def test_a_sent_message_cannot_be_cancelled(
    rt: Runtime, client: httpx.Client, simulators: SimulatorServer
) -> None:
    (message_id,) = store(rt, 1)
    send_messages(rt, [message_id])

    assert client.post(f"/v1/messages/{message_id}/cancel").status_code == 409
    assert len(simulators["cue"].state.received) == 1


def test_a_message_whose_earlier_attempt_may_have_gone_out_is_not_cancelled(
    rt: Runtime,
) -> None:
    (message_id,) = store(rt, 1)
    with rt.db.session() as s, s.begin():
        s.execute(
            update(messages).where(messages.c.id == message_id).values(reference_in_doubt=True)
        )
        what, current = cancel_unsent(s, message_id, rt.db.clock(), "test")
    assert (what, current) == (Cancel.TOO_LATE, "queued")


def test_cancelling_an_unknown_message_is_a_404(client: httpx.Client) -> None:
    assert client.post("/v1/messages/999999/cancel").status_code == 404


def test_a_message_is_cancelled_over_the_cli(
    tmp_path: Path, simulators: SimulatorServer, redis_url: str, redis_client: redis.Redis
) -> None:
    env = cli_env(tmp_path, simulators, redis_url)
    sent = run(["send", "--to", "+27821230001", "--text", "hi", "--provider", "cue"], env)
    message_id = sent.stdout.strip()

    first = run(["cancel", message_id], env)
    assert first.returncode == 0, first.stderr
    assert f"message {message_id} cancelled" in first.stdout

    again = run(["cancel", message_id], env)
    assert again.returncode == 1
    assert "not cancelled: it was cancelled already" in again.stderr


def test_a_cancel_racing_a_workers_claim_waits_for_it_and_then_refuses(rt: Runtime) -> None:
    (message_id,) = store(rt, 1)
    outcome: list[tuple[Cancel, str | None]] = []

    def cancel() -> None:
        with rt.db.session() as s, s.begin():
            outcome.append(cancel_unsent(s, message_id, rt.db.clock(), "test"))

    with rt.db.session() as worker, worker.begin():
        assert claim(worker, [message_id], rt.db.clock(), "token")
        racing = threading.Thread(target=cancel)
        racing.start()
        racing.join(0.5)
        assert racing.is_alive()  # the claim's row lock holds the cancel back
    racing.join(10)

    assert outcome == [(Cancel.TOO_LATE, "sending")]
    assert status_of(rt, message_id)[0] == "sending"
