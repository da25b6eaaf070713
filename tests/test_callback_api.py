"""Asking for status callbacks over the HTTP API, and listing and replaying them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import select, update

from smsdispatch.store import api_keys
from smsdispatch.store.db import Database
from smsdispatch.store.models import messages, status_callbacks
from tests.api_server import served_api

HOOK = "http://127.0.0.1:9/hooks"


def message(**overrides: Any) -> dict[str, Any]:
    return {"to": "+27821230001", "text": "hi", "provider": "cue"} | overrides


def callback_columns(db: Database, message_id: int) -> tuple[str | None, int | None]:
    with db.session() as s:
        row = s.execute(
            select(messages.c.status_callback, messages.c.callback_key_id).where(
                messages.c.id == message_id
            )
        ).one()
    return row.status_callback, row.callback_key_id


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hooks",
        "http://10.1.2.3/hooks",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:8080/hooks",
        "http://localhost/hooks",
    ],
)
def test_a_callback_url_to_a_private_address_is_a_422_naming_status_callback(
    database_url: str, redis_client: redis.Redis, redis_url: str, url: str
) -> None:
    with served_api(
        database_url=database_url, redis_url=redis_url, callback_secret="s3cret"
    ) as client:
        response = client.post("/v1/messages", json=message(status_callback=url))
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "status_callback"]
    assert "address" in error["msg"]
    assert "CALLBACK_ALLOW_PRIVATE" in error["msg"]


@pytest.mark.parametrize("url", ["ftp://example.com/x", "not a url", "https://user:pw@x.org/"])
def test_a_callback_url_that_is_not_plain_http_is_a_422(
    database_url: str, redis_client: redis.Redis, redis_url: str, url: str
) -> None:
    with served_api(
        database_url=database_url, redis_url=redis_url, callback_secret="s3cret"
    ) as client:
        response = client.post("/v1/messages", json=message(status_callback=url))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "status_callback"]


def test_a_loopback_callback_is_stored_when_private_addresses_are_allowed(
    database: Database, database_url: str, redis_client: redis.Redis, redis_url: str
) -> None:
    with served_api(
        database_url=database_url,
        redis_url=redis_url,
        callback_secret="s3cret",
        callback_allow_private=True,
    ) as client:
        response = client.post("/v1/messages", json=message(status_callback=HOOK))
    assert response.status_code == 202
    assert callback_columns(database, response.json()["id"]) == (HOOK, None)


def test_a_callback_without_any_secret_to_sign_with_is_refused(
    database_url: str, redis_client: redis.Redis, redis_url: str
) -> None:
    with served_api(
        database_url=database_url, redis_url=redis_url, callback_allow_private=True
    ) as client:
        response = client.post("/v1/messages", json=message(status_callback=HOOK))
    assert response.status_code == 422
    assert "CALLBACK_SECRET" in response.json()["detail"][0]["msg"]


def test_a_keys_default_callback_and_secret_apply_to_its_messages(
    database: Database, database_url: str, redis_client: redis.Redis, redis_url: str
) -> None:
    with database.session() as s, s.begin():
        made = api_keys.create(s, "crm", database.clock(), callback_url=HOOK)
    with served_api(
        database_url=database_url, redis_url=redis_url, callback_allow_private=True
    ) as client:
        headers = {"X-API-Key": made.key}
        by_default = client.post("/v1/messages", json=message(), headers=headers)
        own = client.post(
            "/v1/messages/batch",
            json={"messages": [message(status_callback=HOOK + "/own")]},
            headers=headers,
        )
    assert by_default.status_code == own.status_code == 202
    assert made.callback_secret.startswith(api_keys.SECRET_PREFIX)
    assert callback_columns(database, by_default.json()["id"]) == (HOOK, made.id)
    [[_, own_id]] = own.json()["accepted"]
    assert callback_columns(database, own_id) == (HOOK + "/own", made.id)


def failed_callback(db: Database, client: httpx.Client, key: str | None = None) -> int:
    """A message with a callback (sent with `key`, if given), delivered, whose
    callback failed."""
    headers = {"X-API-Key": key} if key else None
    sent = client.post("/v1/messages", json=message(status_callback=HOOK), headers=headers)
    message_id = sent.json()["id"]
    with db.session() as s, s.begin():
        s.execute(update(messages).where(messages.c.id == message_id).values(status="delivered"))
        s.execute(update(status_callbacks).values(state="failed", last_error="HTTP 410: gone"))
        return int(s.scalar(select(status_callbacks.c.id)) or 0)


def test_failed_callbacks_are_listed_without_secrets_and_replayed(
    database: Database, database_url: str, redis_client: redis.Redis, redis_url: str
) -> None:
    with served_api(
        database_url=database_url,
        redis_url=redis_url,
        callback_secret="s3cret",
        callback_allow_private=True,
    ) as client:
        callback_id = failed_callback(database, client)
        listed = client.get("/v1/callbacks", params={"state": "failed"}).json()
        replayed = client.post(f"/v1/callbacks/{callback_id}/replay")
        again = client.post(f"/v1/callbacks/{callback_id}/replay")
        pending = client.get("/v1/callbacks", params={"state": "pending"}).json()
    assert [(c["id"], c["status"], c["last_error"]) for c in listed] == [
        (callback_id, "delivered", "HTTP 410: gone")
    ]
    assert "s3cret" not in str(listed)
    assert replayed.json() == {"replayed": [callback_id]}
    assert again.status_code == 404
    assert [c["id"] for c in pending] == [callback_id]


def test_every_failed_callback_is_replayed_at_once(
    database: Database, database_url: str, redis_client: redis.Redis, redis_url: str
) -> None:
    with served_api(
        database_url=database_url,
        redis_url=redis_url,
        callback_secret="s3cret",
        callback_allow_private=True,
    ) as client:
        callback_id = failed_callback(database, client)
        replayed = client.post("/v1/callbacks/replay").json()
        unauthenticated = client.get("/v1/callbacks", headers={"X-API-Key": "wrong"})
    assert replayed == {"replayed": [callback_id]}
    assert unauthenticated.status_code == 401


def test_the_openapi_document_names_the_callback_endpoints_and_their_errors(
    database_url: str, redis_client: redis.Redis, redis_url: str
) -> None:
    with served_api(database_url=database_url, redis_url=redis_url) as client:
        document = client.get("/openapi.json").json()
    responses = document["paths"]["/v1/callbacks/{callback_id}/replay"]["post"]["responses"]
    assert set(responses) >= {"200", "401", "404", "422"}
    assert "status_callback" in document["components"]["schemas"]["MessageIn"]["properties"]


def test_a_key_sees_and_replays_only_its_own_messages_callbacks(
    database: Database, database_url: str, redis_client: redis.Redis, redis_url: str
) -> None:
    with database.session() as s, s.begin():
        mine = api_keys.create(s, "crm", database.clock(), callback_url=HOOK)
        theirs = api_keys.create(s, "billing", database.clock(), callback_url=HOOK)
    with served_api(
        database_url=database_url, redis_url=redis_url, callback_allow_private=True
    ) as client:
        callback_id = failed_callback(database, client, key=mine.key)
        other = {"X-API-Key": theirs.key}
        seen_by_other = client.get("/v1/callbacks", headers=other).json()
        replayed_by_other = client.post(f"/v1/callbacks/{callback_id}/replay", headers=other)
        seen_by_owner = client.get("/v1/callbacks", headers={"X-API-Key": mine.key}).json()
    assert seen_by_other == []
    assert replayed_by_other.status_code == 404
    assert [c["id"] for c in seen_by_owner] == [callback_id]
