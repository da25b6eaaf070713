"""The producer stores valid messages, reports bad ones, enqueues ids only."""

from __future__ import annotations

import base64
import json
import math

import pytest
import redis
from sqlalchemy import func, select

from smsdispatch.config.catalog import Catalog
from smsdispatch.producer.api import Producer
from smsdispatch.producer.validation import InvalidMessage, SendRequest
from smsdispatch.store.db import Database
from smsdispatch.store.models import messages


def queued_payloads(client: redis.Redis, queue: str) -> list[dict[str, object]]:
    return [json.loads(raw) for raw in client.lrange(queue, 0, -1)]


def task_args(payload: dict[str, object]) -> list[object]:
    body = json.loads(base64.b64decode(str(payload["body"])))
    return list(body[0])


def count_rows(db: Database) -> int:
    with db.session() as s:
        return int(s.execute(select(func.count()).select_from(messages)).scalar_one())


def test_batch_stores_the_valid_and_reports_each_invalid_by_index(
    producer: Producer, database: Database
) -> None:
    result = producer.send_batch(
        [
            SendRequest("+27821230001", "ok 1", "cue"),
            SendRequest("not-a-number", "bad number", "cue"),
            SendRequest("+27821230002", "bad provider", "nope"),
            SendRequest("+27821230003", "a" * 2000, "cue"),
            SendRequest("+27821230004", "bad sender", "cue", sender="WAYTOOLONGNAME"),
            SendRequest("+27821230005", "ok 2", "messangi"),
        ]
    )
    assert sorted(result.ids) == [0, 5]
    assert [(r.index, r.field) for r in result.rejected] == [
        (1, "to"),
        (2, "provider"),
        (3, "text"),
        (4, "sender"),
    ]
    assert count_rows(database) == 2


def test_each_vendor_gets_its_own_queue_and_tasks_carry_ids_only(
    producer: Producer, redis_client: redis.Redis, catalog: Catalog
) -> None:
    result = producer.send_batch(
        [SendRequest(f"+2782123{i:04d}", "secret text 42", "cue") for i in range(120)]
    )
    payloads = queued_payloads(redis_client, "sms.cue")
    ids = [mid for p in payloads for mid in task_args(p)[0]]  # type: ignore[attr-defined]
    assert sorted(ids) == sorted(result.ids.values())
    assert len(payloads) == math.ceil(120 / catalog.get("cue").task_size)
    raw = b"".join(
        x if isinstance(x, bytes) else x.encode() for x in redis_client.lrange("sms.cue", 0, -1)
    )
    assert b"2782123" not in raw
    assert b"secret text" not in raw
    assert b"cue-pass" not in raw


def test_same_idempotency_key_returns_the_same_id_and_enqueues_nothing_new(
    producer: Producer, redis_client: redis.Redis, database: Database
) -> None:
    first = producer.send(SendRequest("+27821230001", "hi", "cue", idempotency_key="order-1"))
    again = producer.send(SendRequest("+27821230001", "hi", "cue", idempotency_key="order-1"))
    assert first == again
    assert count_rows(database) == 1
    assert redis_client.llen("sms.cue") == 1


def test_single_send_raises_naming_the_bad_field(producer: Producer) -> None:
    with pytest.raises(InvalidMessage, match=r"^to: "):
        producer.send(SendRequest("123", "hi", "cue"))
