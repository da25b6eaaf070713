"""Status callbacks reach a real receiver on loopback: every change, signed,
in order; retried through 503 and 429; a hanging receiver holds up no other."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from datetime import timedelta

import pytest
import redis
import redis.asyncio as aioredis

from smsdispatch.callbacks import verify_signature
from smsdispatch.callbacks.hosts import HostGate
from smsdispatch.config.catalog import ProviderEntry
from smsdispatch.monitoring.collector import ClusterCollector
from smsdispatch.sending.transitions import plan_update
from smsdispatch.store import callbacks as store
from smsdispatch.store.db import Database
from smsdispatch.store.outbox import apply_updates, claim
from smsdispatch.store.reports import apply_reports
from smsdispatch.vocabulary.delivery import DeliveryReport
from smsdispatch.vocabulary.outcomes import Outcome
from smsdispatch.vocabulary.status import MessageStatus
from tests.callback_driving import callback_settings, drain
from tests.callback_receiver import SECRET, Reply, receiving
from tests.test_outbox import add_rows


def accept_and_deliver(db: Database, ids: list[int]) -> None:
    """Every message accepted by Cue, then a delivery report for each: two
    status changes a message, as the pipeline and the report batcher write them."""
    now = db.clock()
    with db.session() as s, s.begin():
        rows = claim(s, ids, now, "tok")
        entry = ProviderEntry(name="cue")
        apply_updates(
            s, [plan_update(r.ref, Outcome.accepted(f"T{r.id}"), entry, now) for r in rows], now
        )
    reports = [
        ("cue", DeliveryReport(MessageStatus.DELIVERED, "DELIVRD", tracking_id=f"T{mid}"))
        for mid in ids
    ]
    with db.session() as s, s.begin():
        apply_reports(s, reports, db.clock())


def test_a_receiver_gets_every_change_of_1000_messages_signed_and_in_sequence(
    database: Database, redis_client: redis.Redis, redis_url: str
) -> None:
    with receiving() as receiver:
        ids = add_rows(
            database, 1000, status_callback=receiver.url, at=database.clock() - timedelta(1)
        )
        accept_and_deliver(database, ids)
        settings = callback_settings(str(database.engine.url.render_as_string(False)))
        asyncio.run(drain(database, settings, redis_url, seconds=60))
        got = list(receiver.received)

    assert all(verify_signature(r.body, r.signature, SECRET) for r in got)
    by_message: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for r in got:
        doc = r.document
        by_message[doc["id"]].append((doc["sequence"], doc["status"]))
    assert sorted(by_message) == ids
    for changes in by_message.values():
        assert [status for _, status in changes] == ["accepted", "delivered"]
        assert changes[0][0] < changes[1][0]
    assert got[0].document["vendor"] == "cue"
    assert got[0].document["tracking_id"].startswith("T")


def test_a_receiver_answering_503_then_429_gets_every_callback_once_afterwards(
    database: Database, redis_client: redis.Redis, redis_url: str
) -> None:
    def answer(n: int, doc: dict[str, object]) -> Reply:
        if n < 20:
            return Reply(503)
        if n < 40:
            return Reply(429, {"Retry-After": "1"})
        return Reply(200)

    with receiving(answer) as receiver:
        ids = add_rows(database, 10, status_callback=receiver.url)
        accept_and_deliver(database, ids)
        settings = callback_settings(str(database.engine.url.render_as_string(False)))
        started = time.monotonic()
        asyncio.run(drain(database, settings, redis_url, seconds=60))
        took = time.monotonic() - started
        got = receiver.delivered()

    finals = [(d["id"], d["status"]) for d in got]
    assert sorted(finals) == sorted([(m, s) for m in ids for s in ("accepted", "delivered")])
    assert len(set(finals)) == len(finals)  # none twice
    assert took >= 1.0  # the 429s' Retry-After was honoured
    with database.session() as s:
        assert store.list_callbacks(s, "failed") == []


def test_a_receiver_that_hangs_delays_no_other_receivers_callbacks(
    database: Database, redis_client: redis.Redis, redis_url: str
) -> None:
    hanging = lambda n, doc: Reply(200, delay=4.0)  # noqa: E731
    with receiving(hanging) as slow, receiving() as quick:
        slow_ids = add_rows(database, 20, status_callback=slow.url)
        quick_ids = add_rows(database, 20, status_callback=quick.url)
        accept_and_deliver(database, slow_ids + quick_ids)
        settings = callback_settings(
            str(database.engine.url.render_as_string(False)), callback_timeout_seconds=1.0
        )
        started = time.monotonic()
        asyncio.run(
            drain(
                database,
                settings,
                redis_url,
                seconds=10,
                done=lambda: len(quick.delivered()) == 40,
            )
        )
        took = time.monotonic() - started

    assert len(quick.delivered()) == 40
    # Both of each message's changes in turn, each behind a settled one, while
    # the other receiver held every POST to it for its whole timeout.
    assert took < 1.0 + 1.0


def test_delivered_callbacks_are_counted_for_prometheus(
    database: Database, redis_client: redis.Redis, redis_url: str
) -> None:
    with receiving() as receiver:
        ids = add_rows(database, 5, status_callback=receiver.url)
        accept_and_deliver(database, ids)
        settings = callback_settings(str(database.engine.url.render_as_string(False)))
        asyncio.run(drain(database, settings, redis_url, seconds=30))
    collector = ClusterCollector(redis_client, database, [], db_cache_seconds=0)
    metrics = {m.name: m for m in collector.collect()}
    outcomes = {s.labels["outcome"]: s.value for s in metrics["smsdispatch_callbacks"].samples}
    latency = {s.name: s.value for s in metrics["smsdispatch_callback_latency_seconds"].samples}
    pending = metrics["smsdispatch_callbacks_pending"].samples[0].value
    assert outcomes == {"delivered": 10, "retried": 0, "failed": 0}
    assert latency["smsdispatch_callback_latency_seconds_count"] == 10
    assert pending == 0


@pytest.mark.parametrize("status", [400, 404, 410])
def test_a_4xx_other_than_429_fails_the_callback_at_once(
    database: Database, redis_client: redis.Redis, redis_url: str, status: int
) -> None:
    with receiving(lambda n, doc: Reply(status)) as receiver:
        [mid] = add_rows(database, 1, status_callback=receiver.url)
        accept_and_deliver(database, [mid])
        settings = callback_settings(str(database.engine.url.render_as_string(False)))
        asyncio.run(drain(database, settings, redis_url, seconds=10))
    with database.session() as s:
        failed = store.list_callbacks(s, "failed")
    assert [(f.status, f.attempts, f.response_status) for f in failed] == [
        ("accepted", 1, status),
        ("delivered", 1, status),
    ]


def test_a_host_slot_whose_holder_died_ends_with_its_hold(
    redis_client: redis.Redis, redis_url: str
) -> None:
    async def scenario() -> list[int]:
        client = aioredis.Redis.from_url(redis_url)
        gate = HostGate(client, concurrency=1, rate_per_second=1000, hold_seconds=0.3)
        try:
            first = await gate.take("hooks.example", "dead-worker")  # never released
            busy = await gate.take("hooks.example", "other")
            await asyncio.sleep(0.4)
            after_hold = await gate.take("hooks.example", "other")
            await gate.release("hooks.example", "other")
            released = await gate.take("hooks.example", "third")
            return [first, busy, after_hold, released]
        finally:
            await client.aclose()

    assert asyncio.run(scenario()) == [1, 0, 1, 1]
