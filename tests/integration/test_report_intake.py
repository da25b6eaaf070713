"""Delivery reports at volume through a real API process, killed mid-stream."""

from __future__ import annotations

import asyncio
import random
import signal
from collections import Counter
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import bindparam, distinct, func, select, update

from smsdispatch.local.environment import stack_env
from smsdispatch.local.processes import ManagedProcess, api_process, free_port, wait_http
from smsdispatch.reports.urls import report_url
from smsdispatch.store.db import Database
from smsdispatch.store.models import delivery_reports, messages
from tests.settings import make_settings
from tests.test_outbox import add_rows

pytestmark = pytest.mark.slow

SECRET = "report-intake-secret-0123456789abcdef"
MESSAGES = 4000
# Restcomm's final words, as its simulator reports them after "sent"; each is
# also the status it maps to.
FATES = ("delivered", "undelivered", "failed")


def restcomm_reports(sids: list[str], rng: random.Random) -> list[dict[str, str]]:
    """Two reports per message ("sent", then its fate), a third of them sent
    again, all shuffled: in order or not, repeated or not."""
    fate_of = {sid: rng.choice(FATES) for sid in sids}
    forms = [{"MessageSid": sid, "MessageStatus": "sent"} for sid in sids]
    forms += [{"MessageSid": sid, "MessageStatus": fate_of[sid]} for sid in sids]
    forms += rng.sample(forms, len(forms) // 3)
    rng.shuffle(forms)
    return forms


class Poster:
    """Posts every report until it is answered 200, as a vendor that retries
    does; kills the API process right after its `kill_after`th 200."""

    def __init__(self, url: str, api: ManagedProcess, kill_after: int) -> None:
        self.url, self.api, self.kill_after = url, api, kill_after
        self.answered = 0
        self.killed = asyncio.Event()

    async def post(self, client: httpx.AsyncClient, form: dict[str, str]) -> None:
        while True:
            try:
                response = await client.post(self.url, data=form)
            except httpx.TransportError:
                await asyncio.sleep(0.1)
                continue
            if response.status_code == 200:
                self.answered += 1
                if self.answered == self.kill_after:
                    self.api.kill(signal.SIGKILL)
                    self.killed.set()
                return
            await asyncio.sleep(0.1)

    async def post_all(self, forms: list[dict[str, str]], connections: int) -> None:
        queue: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        for form in forms:
            queue.put_nowait(form)
        async with httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=50)) as c:

            async def lane() -> None:
                while not queue.empty():
                    await self.post(c, queue.get_nowait())

            await asyncio.gather(*(lane() for _ in range(connections)))


def restart(api: ManagedProcess) -> None:
    """As the operator's supervisor would, once the killed process is gone."""
    assert api.proc is not None
    api.proc.wait(10)
    api.start()


def test_ten_thousand_reports_reach_their_final_statuses_and_a_killed_api_loses_none(
    redis_url: str, database_url: str, database: Database, tmp_path: Path
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("volume through a separate API process: PostgreSQL")
    sids = [f"SM{n:032x}" for n in range(MESSAGES)]
    ids = add_rows(database, MESSAGES, provider="restcomm", status="accepted")
    with database.session() as s, s.begin():
        s.execute(
            update(messages)
            .where(messages.c.id == bindparam("b_id"))
            .values(tracking_id=bindparam("b_sid")),
            [{"b_id": mid, "b_sid": sid} for mid, sid in zip(ids, sids, strict=True)],
        )
    forms = restcomm_reports(sids, random.Random(11))
    assert len(forms) >= 10_000

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = stack_env(
        redis_url=redis_url,
        database_url=database_url,
        simulators_root=None,
        credentials={},
        extra={"PUBLIC_BASE_URL": base, "REPORT_SECRET": SECRET},
    )
    settings = make_settings(public_base_url=base, report_secret=SecretStr(SECRET))
    url = report_url(settings, "restcomm")
    assert url is not None
    api = api_process(env, tmp_path, port).start()
    try:
        wait_http(f"{base}/openapi.json")
        poster = Poster(url, api, kill_after=200)

        async def run() -> None:
            posting = asyncio.create_task(poster.post_all(forms, connections=20))
            await poster.killed.wait()
            await asyncio.to_thread(restart, api)
            await posting

        asyncio.run(run())
    finally:
        api.stop()

    final = {f["MessageSid"]: f["MessageStatus"] for f in forms if f["MessageStatus"] != "sent"}
    with database.session() as s:
        found = dict(s.execute(select(messages.c.tracking_id, messages.c.status)).all())
        stored = s.execute(select(delivery_reports.c.outcome)).scalars().all()
        batches = s.scalar(select(func.count(distinct(delivery_reports.c.received_at))))
    assert {sid: found[sid] for sid in sids} == final
    # Every report answered 200 is kept raw (those answered before the kill too).
    assert len(stored) >= len(forms)
    assert Counter(stored)["unmatched"] == 0
    # Applied in batches: the reports of one transaction share its time.
    assert batches is not None
    assert batches < len(forms) / 2, batches
