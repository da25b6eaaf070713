"""An operator pauses and resumes a vendor (CLI and API): every worker stops
sending to it at once, and sends again at once after the resume."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import select

from smsdispatch.config.catalog import Catalog, UnknownProviderError
from smsdispatch.config.settings import Settings
from smsdispatch.limits import pauses
from smsdispatch.limits.control import pause_vendor, resume_vendor
from smsdispatch.local.processes import free_port
from smsdispatch.local.simulators import SimulatorServer
from smsdispatch.producer.api import Producer
from smsdispatch.producer.validation import SendRequest
from smsdispatch.sending.pipeline import send_messages
from smsdispatch.store.models import messages
from smsdispatch.workers.runtime import Runtime
from tests.api_server import served_api
from tests.clock import FakeClock, runtime
from tests.test_cli import cli_env, run

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


# -- pauses in Redis ------------------------------------------------------------


def test_an_operators_pause_says_who_set_it_and_lasts_until_resumed(
    redis_client: redis.Redis,
) -> None:
    pauses.pause_by_operator(redis_client, "cue", "fixing the password", "ana (cli)", None)
    found = pauses.current_pause(redis_client, "cue", NOW)
    assert found is not None
    assert (found.reason, found.by, found.automatic, found.until) == (
        "fixing the password",
        "ana (cli)",
        False,
        None,
    )
    assert found.since is not None
    assert abs((found.since - pauses.redis_now(redis_client)).total_seconds()) < 5


def test_a_workers_pause_is_marked_automatic_and_has_an_end(redis_client: redis.Redis) -> None:
    pauses.pause(redis_client, "cue", 300, "-3: No Credit")
    found = pauses.current_pause(redis_client, "cue", NOW)
    assert found is not None
    assert found.automatic
    assert found.until is not None
    assert 290 < (found.until - NOW).total_seconds() <= 300


def test_an_automatic_pause_never_replaces_an_operators_pause_until_resumed(
    redis_client: redis.Redis,
) -> None:
    pauses.pause_by_operator(redis_client, "cue", "maintenance", "ana (cli)", None)
    assert not pauses.pause(redis_client, "cue", 600, "-3: No Credit")
    found = pauses.current_pause(redis_client, "cue", NOW)
    assert found is not None
    assert (found.by, found.reason) == ("ana (cli)", "maintenance")


def test_an_operators_pause_replaces_a_longer_automatic_one(redis_client: redis.Redis) -> None:
    pauses.pause(redis_client, "cue", 600, "-3: No Credit")
    pauses.pause_by_operator(redis_client, "cue", "credit bought", "ana (cli)", 10)
    found = pauses.current_pause(redis_client, "cue", NOW)
    assert found is not None
    assert found.by == "ana (cli)"
    assert found.until is not None
    assert (found.until - NOW).total_seconds() <= 10


def test_a_pause_written_as_a_bare_reason_still_reads(redis_client: redis.Redis) -> None:
    redis_client.set("smsdispatch:pause:cue", "-3: No Credit", px=60_000)
    found = pauses.current_pause(redis_client, "cue", NOW)
    assert found is not None
    assert (found.reason, found.automatic, found.since) == ("-3: No Credit", True, None)


def test_pausing_an_unknown_vendor_names_the_known_ones(
    redis_client: redis.Redis, catalog: Catalog
) -> None:
    with pytest.raises(UnknownProviderError, match=r"known providers: .*cue.*messangi"):
        pause_vendor(redis_client, catalog, "twilio", reason="x", by="ana")


# -- what workers do ----------------------------------------------------------


@pytest.fixture
def rt(
    settings: Settings, database_url: str, catalog: Catalog, redis_client: redis.Redis
) -> Iterator[Runtime]:
    runtime_ = runtime(settings, database_url, catalog, FakeClock(datetime.now(UTC)))
    yield runtime_
    runtime_.close()


def store(rt: Runtime, count: int) -> list[int]:
    producer = Producer(rt.settings, rt.catalog, rt.db, rt.celery)
    requests = [SendRequest(f"+2782123{i:04d}", f"code {i}", "cue") for i in range(count)]
    return list(producer.send_batch(requests).ids.values())


def due(rt: Runtime, ids: list[int]) -> list[bool]:
    now = rt.db.clock()
    with rt.db.session() as s:
        m = messages.c
        rows = s.execute(select(m.next_attempt_at).where(m.id.in_(ids)).order_by(m.id))
        return [at <= now for (at,) in rows]


def test_a_paused_vendor_gets_nothing_and_its_messages_go_as_soon_as_it_is_resumed(
    rt: Runtime, simulators: SimulatorServer, redis_client: redis.Redis
) -> None:
    ids = store(rt, 3)
    pause_vendor(redis_client, rt.catalog, "cue", reason="maintenance", by="ana (cli)")

    send_messages(rt, ids)
    assert len(simulators["cue"].state.received) == 0
    assert due(rt, ids) == [False] * 3

    resumed = resume_vendor(redis_client, rt.db, rt.catalog, "cue")
    assert resumed.lifted is not None
    assert resumed.lifted.by == "ana (cli)"
    assert resumed.released == 3
    assert due(rt, ids) == [True] * 3

    send_messages(rt, ids)
    assert len(simulators["cue"].state.received) == 3


def test_resuming_lets_go_the_messages_whose_own_answer_paused_the_vendor(
    rt: Runtime, simulators: SimulatorServer, redis_client: redis.Redis
) -> None:
    ids = store(rt, 2)
    simulators["cue"].state.control.fail_with = "-2"  # Cue's "Authentication Failed"
    simulators["cue"].state.control.fail_next = 2

    send_messages(rt, ids)
    pause = pauses.current_pause(redis_client, "cue", rt.db.clock())
    assert pause is not None
    assert pause.automatic
    assert due(rt, ids) == [False] * 2

    assert resume_vendor(redis_client, rt.db, rt.catalog, "cue").released == 2
    send_messages(rt, ids)
    assert len(simulators["cue"].state.received) == 2


# -- over the CLI and the API ---------------------------------------------------


def test_a_vendor_is_paused_listed_and_resumed_over_the_cli(
    tmp_path: Path, simulators: SimulatorServer, redis_url: str, redis_client: redis.Redis
) -> None:
    env = cli_env(tmp_path, simulators, redis_url)

    paused = run(["vendor", "pause", "cue", "--reason", "fixing the password"], env)
    assert paused.returncode == 0, paused.stderr
    listed = run(["vendor", "list"], env)
    cue = next(line for line in listed.stdout.splitlines() if line.strip("│ ").startswith("cue"))
    assert "paused" in cue
    assert "until resumed" in cue
    assert "fixing the password" in cue
    assert "(cli)" in cue

    resumed = run(["vendor", "resume", "cue"], env)
    assert resumed.returncode == 0, resumed.stderr
    assert pauses.current_pause(redis_client, "cue", NOW) is None


def test_a_pause_over_the_cli_for_some_seconds_ends_by_itself(
    tmp_path: Path, simulators: SimulatorServer, redis_url: str, redis_client: redis.Redis
) -> None:
    result = run(
        ["vendor", "pause", "smsbuddy", "--for", "30"], cli_env(tmp_path, simulators, redis_url)
    )
    assert result.returncode == 0, result.stderr
    assert 0 < redis_client.pttl("smsdispatch:pause:smsbuddy") <= 30_000


def test_the_cli_refuses_an_unknown_vendor_naming_the_known_ones(
    tmp_path: Path, simulators: SimulatorServer, redis_url: str
) -> None:
    result = run(["vendor", "resume", "twilio"], cli_env(tmp_path, simulators, redis_url))
    assert result.returncode == 2
    assert "unknown provider 'twilio'; known providers: cue" in result.stderr


@pytest.fixture
def client(database_url: str, redis_client: redis.Redis, redis_url: str) -> Iterator[httpx.Client]:
    with served_api(database_url=database_url, redis_url=redis_url) as http:
        yield http


def test_a_vendor_is_paused_listed_and_resumed_over_the_api(client: httpx.Client) -> None:
    paused = client.post("/v1/vendors/cue/pause", json={"reason": "rotating keys", "seconds": 120})
    assert paused.status_code == 200
    pause = paused.json()["pause"]
    assert (pause["reason"], pause["by"], pause["automatic"]) == (
        "rotating keys",
        "an API_KEYS key",
        False,
    )
    assert pause["until"] is not None

    listed = {v["vendor"]: v for v in client.get("/v1/vendors").json()}
    assert listed["cue"]["paused"]
    assert not listed["messangi"]["paused"]

    resumed = client.post("/v1/vendors/cue/resume")
    assert resumed.status_code == 200
    assert resumed.json()["lifted"]["reason"] == "rotating keys"
    assert not {v["vendor"]: v for v in client.get("/v1/vendors").json()}["cue"]["paused"]


def test_an_unknown_vendor_over_the_api_is_a_404_naming_the_known_ones(
    client: httpx.Client,
) -> None:
    response = client.post("/v1/vendors/twilio/pause", json={})
    assert response.status_code == 404
    assert "known providers: cue" in response.json()["detail"]


def test_vendors_need_an_api_key(client: httpx.Client) -> None:
    response = client.post("/v1/vendors/cue/resume", headers={"X-API-Key": "wrong"})
    assert response.status_code == 401


def test_vendors_over_the_api_answer_503_while_redis_is_away(database_url: str) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"
    with served_api(database_url=database_url, redis_url=closed) as http:
        response = http.get("/v1/vendors")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "Redis is unreachable" in response.json()["detail"]
