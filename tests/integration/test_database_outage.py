"""PostgreSQL unreachable mid-send: no vendor answer lost, nothing sent twice.

The workers and beat reach PostgreSQL through a TCP proxy the test cuts
(every connection reset, new ones refused) while two workers send; the test
reads the database directly. Afterwards every message reached its vendor
exactly once and every vendor id is recorded. The 60-second outage runs in
`make chaos` (chaos/), which uses the same proxy.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import select
from sqlalchemy.engine import make_url

from chaos.proxy import TcpProxy
from smsdispatch.local.processes import wait_until
from smsdispatch.local.simulators import SimulatorServer
from smsdispatch.producer.validation import SendRequest
from smsdispatch.store.db import Database
from smsdispatch.store.models import messages
from smsdispatch.vocabulary import keys
from smsdispatch.vocabulary.status import SETTLED
from tests.api_server import served_api
from tests.integration.stack import Stack, running_stack

pytestmark = pytest.mark.slow

VENDORS = ("cue", "messangi", "smsbuddy", "restcomm", "skycore")
OUTAGE_SECONDS = 10.0


@pytest.fixture
def proxy(postgres_url: str) -> Iterator[TcpProxy]:
    url = make_url(postgres_url)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as running:
        yield running


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_postgres_unreachable_mid_send_loses_no_answer_and_sends_nothing_twice(
    redis_client: redis.Redis,
    redis_url: str,
    database_url: str,
    simulators: SimulatorServer,
    proxy: TcpProxy,
    tmp_path: Path,
) -> None:
    proxied = make_url(database_url).set(host=proxy.host, port=proxy.port)
    direct = Database(database_url)
    for vendor in VENDORS:
        simulators[vendor].state.control.latency_seconds = 0.05
    with running_stack(
        redis_url=redis_url,
        database_url=proxied.render_as_string(hide_password=False),
        simulators=simulators,
        tmp_path=tmp_path,
        extra_env={"DATABASE_RETRY_SECONDS": "2"},
    ) as stack:
        stack.start_worker("second")
        total = 1000
        send(stack, total)
        wait_until(lambda: received(simulators) >= total // 5, 60, "a fifth received")

        with proxy.down():
            during = received(simulators)
            time.sleep(OUTAGE_SECONDS)
        assert received(simulators) > during  # answers kept coming while it was away

        wait_until(lambda: settled(direct) >= total, 120, "every message recorded")
        recovered = {
            (k.decode() if isinstance(k, bytes) else k): int(v)
            for k, v in redis_client.hgetall(keys.METRICS_RECOVERIES).items()
        }
    print(f"\nrecovered after the outage: {recovered}")
    # The outage did catch answers in flight: the sweeper wrote them.
    assert any(field.endswith("|orphaned") for field in recovered)

    rows = rows_by_vendor(direct)
    direct.dispose()
    for vendor in VENDORS:
        at_vendor = Counter(r.to.lstrip("+") for r in simulators[vendor].state.received)
        issued = {r.tracking_id for r in simulators[vendor].state.received}
        assert sum(at_vendor.values()) == len(at_vendor) == total // 5, vendor  # none twice
        assert {status for status, _ in rows[vendor]} == {"accepted"}, vendor
        assert {tid for _, tid in rows[vendor]} == issued, vendor  # every vendor id kept


def send(stack: Stack, total: int) -> None:
    requests = [
        SendRequest(f"+1202555{i:04d}", f"outage {i}", VENDORS[i % len(VENDORS)])
        for i in range(total)
    ]
    assert not stack.producer.send_batch(requests).rejected


def received(simulators: SimulatorServer) -> int:
    return sum(len(simulators[v].state.received) for v in VENDORS)


def settled(db: Database) -> int:
    with db.session() as session:
        statuses = session.scalars(select(messages.c.status)).all()
    return sum(1 for s in statuses if s in SETTLED)


def rows_by_vendor(db: Database) -> dict[str, list[tuple[str, str | None]]]:
    m = messages.c
    with db.session() as session:
        found: dict[str, list[tuple[str, str | None]]] = {v: [] for v in VENDORS}
        for provider, status, tracking_id in session.execute(
            select(m.provider, m.status, m.tracking_id)
        ):
            found[provider].append((status, tracking_id))
    return found


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_the_api_answers_503_while_postgres_is_away_and_serves_again_without_a_restart(
    redis_client: redis.Redis, redis_url: str, database_url: str, proxy: TcpProxy
) -> None:
    proxied = make_url(database_url).set(host=proxy.host, port=proxy.port)
    message = {"to": "+12025550100", "text": "hello", "provider": "cue"}
    with served_api(
        redis_url=redis_url, database_url=proxied.render_as_string(hide_password=False)
    ) as http:
        assert http.post("/v1/messages", json=message).status_code == 202
        with proxy.down():
            refused = http.post("/v1/messages", json=message)
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "5"
        assert "nothing was stored" in refused.json()["detail"]

        again = http.post("/v1/messages", json=message)
        assert again.status_code == 202
        assert http.get(f"/v1/messages/{again.json()['id']}").json()["status"] == "queued"
