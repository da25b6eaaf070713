"""Listing and searching messages over the API: by each filter, a page at a
time, and without recipients or texts unless asked for."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import insert, update

from smsdispatch.store.db import Database
from smsdispatch.store.messages import insert_queued
from smsdispatch.store.models import campaigns, messages
from tests.api_server import served_api

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def client(database_url: str, redis_client: redis.Redis, redis_url: str) -> Iterator[httpx.Client]:
    with served_api(database_url=database_url, redis_url=redis_url) as http:
        yield http


def stored(database: Database, count: int, **fields: Any) -> list[int]:
    """`count` messages stored an hour apart from T0, with `fields`; their ids."""
    ids = []
    with database.session() as s, s.begin():
        for i in range(count):
            row = {
                "provider": "cue",
                "sender": "smsdispatch",
                "recipient": f"+2782123{i:04d}",
                "text": f"code {i}",
                "encoding": "gsm7",
                "segments": 1,
                **fields,
            }
            ids += insert_queued(s, [row], T0 + timedelta(hours=i))
    return ids


def set_status(database: Database, ids: list[int], status: str) -> None:
    with database.session() as s, s.begin():
        s.execute(update(messages).where(messages.c.id.in_(ids)).values(status=status))


def found(client: httpx.Client, **query: Any) -> list[int]:
    response = client.get("/v1/messages", params=query)
    assert response.status_code == 200, response.text
    return [m["id"] for m in response.json()["messages"]]


def test_messages_are_listed_newest_first_without_recipient_or_text(
    client: httpx.Client, database: Database
) -> None:
    ids = stored(database, 3)
    body = client.get("/v1/messages").json()
    assert [m["id"] for m in body["messages"]] == ids[::-1]
    assert body["next"] is None
    assert not {"to", "text", "recipient"} & set(body["messages"][0])


def test_the_recipient_and_text_are_answered_when_asked_for(
    client: httpx.Client, database: Database
) -> None:
    stored(database, 1)
    (message,) = client.get("/v1/messages", params={"include": "to,text"}).json()["messages"]
    assert (message["to"], message["text"]) == ("+27821230000", "code 0")


def test_an_unknown_include_is_a_422_naming_it(client: httpx.Client) -> None:
    response = client.get("/v1/messages", params={"include": "to,password"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][:2] == ["query", "include"]


def test_messages_are_found_by_status(client: httpx.Client, database: Database) -> None:
    ids = stored(database, 3)
    set_status(database, ids[:2], "delivered")
    assert found(client, status="delivered") == ids[1::-1]
    assert found(client, status="queued") == [ids[2]]


def test_an_unknown_status_is_a_422(client: httpx.Client) -> None:
    assert client.get("/v1/messages", params={"status": "lost"}).status_code == 422


def test_messages_are_found_by_vendor(client: httpx.Client, database: Database) -> None:
    cue = stored(database, 1)
    messangi = stored(database, 1, provider="messangi")
    assert found(client, vendor="messangi") == messangi
    assert found(client, vendor="cue") == cue


def test_messages_are_found_by_campaign(client: httpx.Client, database: Database) -> None:
    with database.session() as s, s.begin():
        campaign_id = s.execute(
            insert(campaigns)
            .values(
                name="spring",
                provider="cue",
                sender="smsdispatch",
                template="hi",
                created_at=T0,
                updated_at=T0,
            )
            .returning(campaigns.c.id)
        ).scalar_one()
    stored(database, 1)
    theirs = stored(database, 2, campaign_id=campaign_id)
    assert found(client, campaign_id=campaign_id) == theirs[::-1]


def test_messages_are_found_by_the_clients_reference(
    client: httpx.Client, database: Database
) -> None:
    stored(database, 2, client_reference="order-1")
    order_2 = stored(database, 1, client_reference="order-2")
    assert found(client, client_reference="order-2") == order_2


def test_a_message_is_found_by_the_reference_its_vendor_knows(
    client: httpx.Client, database: Database
) -> None:
    first, _ = stored(database, 2)
    reference = client.get(f"/v1/messages/{first}").json()["reference"]
    assert found(client, reference=reference) == [first]


def test_messages_are_found_by_when_they_were_submitted(
    client: httpx.Client, database: Database
) -> None:
    ids = stored(database, 4)  # at T0, T0+1h, T0+2h, T0+3h
    since, until = T0 + timedelta(hours=1), T0 + timedelta(hours=3)
    assert found(client, since=since.isoformat(), until=until.isoformat()) == [ids[2], ids[1]]
    # Without an offset a time is UTC.
    assert found(client, since="2026-12-01T11:00:00") == [ids[3], ids[2]]


def test_pages_follow_one_another_without_repeating_or_skipping(
    client: httpx.Client, database: Database
) -> None:
    ids = stored(database, 5)
    first = client.get("/v1/messages", params={"limit": 2}).json()
    stored(database, 1)  # a new message does not shift the pages after the first
    second = client.get("/v1/messages", params={"limit": 2, "after": first["next"]}).json()
    third = client.get("/v1/messages", params={"limit": 2, "after": second["next"]}).json()
    pages = [[m["id"] for m in page["messages"]] for page in (first, second, third)]
    assert pages == [ids[:2:-1], ids[2:0:-1], ids[:1]]
    assert third["next"] is None


def test_a_cursor_we_did_not_write_is_a_422_naming_after(client: httpx.Client) -> None:
    response = client.get("/v1/messages", params={"after": "not-a-cursor"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "after"]


def test_filters_combine(client: httpx.Client, database: Database) -> None:
    ids = stored(database, 3, client_reference="batch-7")
    stored(database, 1, provider="messangi", client_reference="batch-7")
    set_status(database, ids[:1], "failed")
    assert found(client, vendor="cue", client_reference="batch-7", status="queued") == ids[:0:-1]


def test_searching_needs_an_api_key(client: httpx.Client) -> None:
    assert client.get("/v1/messages", headers={"X-API-Key": "wrong"}).status_code == 401
