"""The HTTP API other applications use: authenticated, validated, size-limited."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from smsdispatch.api.app import create_app
from smsdispatch.store.db import Database
from smsdispatch.vocabulary.message import is_reference
from tests.api_server import served_api
from tests.settings import TEST_CREDENTIALS, make_settings


@pytest.fixture
def client(database_url: str, redis_client: redis.Redis, redis_url: str) -> Iterator[httpx.Client]:
    """The API served over real HTTP, and a client presenting a valid key."""
    with served_api(
        database_url=database_url, redis_url=redis_url, api_max_body_bytes=20_000, api_max_batch=50
    ) as http:
        yield http


def message(**overrides: Any) -> dict[str, Any]:
    return {"to": "+27821230001", "text": "Your code is 1234", "provider": "cue"} | overrides


def test_a_request_without_a_key_is_refused(client: httpx.Client) -> None:
    response = client.post("/v1/messages", json=message(), headers={"X-API-Key": ""})
    assert response.status_code == 401


def test_a_request_with_a_wrong_key_is_refused(client: httpx.Client) -> None:
    response = client.get("/v1/messages/1", headers={"X-API-Key": "wrong"})
    assert response.status_code == 401


def test_a_submitted_message_is_stored_enqueued_and_readable(
    client: httpx.Client, redis_client: redis.Redis
) -> None:
    response = client.post("/v1/messages", json=message(client_reference="order-7"))
    assert response.status_code == 202
    message_id = response.json()["id"]
    assert redis_client.llen("sms.cue") == 1

    state = client.get(f"/v1/messages/{message_id}").json()
    assert (state["status"], state["provider"], state["route"], state["client_reference"]) == (
        "queued",
        "cue",
        None,
        "order-7",
    )
    assert "to" not in state
    assert "text" not in state


def test_no_answer_may_be_cached_as_statuses_change(client: httpx.Client) -> None:
    accepted = client.post("/v1/messages", json=message())
    status = client.get(f"/v1/messages/{accepted.json()['id']}")
    refused = client.get("/v1/messages/1", headers={"X-API-Key": "wrong"})
    assert [r.headers["cache-control"] for r in (accepted, status, refused)] == ["no-store"] * 3


def test_a_message_shows_the_reference_its_vendor_knows_it_by(client: httpx.Client) -> None:
    first, second = (client.post("/v1/messages", json=message()).json()["id"] for _ in range(2))
    references = [client.get(f"/v1/messages/{mid}").json()["reference"] for mid in (first, second)]
    assert all(is_reference(r) for r in references)
    assert references[0] != references[1]


def test_an_invalid_number_is_a_422_naming_the_to_field(client: httpx.Client) -> None:
    response = client.post("/v1/messages", json=message(to="12"))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "to"]


def test_an_unknown_provider_is_a_422_naming_the_provider_field(client: httpx.Client) -> None:
    response = client.post("/v1/messages", json=message(provider="twilio"))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "provider"]


def test_a_missing_field_is_a_422_naming_it(client: httpx.Client) -> None:
    response = client.post("/v1/messages", json={"to": "+27821230001", "provider": "cue"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "text"]


def test_a_batch_stores_the_valid_and_reports_each_invalid_by_index(client: httpx.Client) -> None:
    batch = [message(), message(to="bad"), message(text="x" * 1000), message(provider="messangi")]
    response = client.post("/v1/messages/batch", json={"messages": batch})
    assert response.status_code == 202
    body = response.json()
    assert [index for index, _ in body["accepted"]] == [0, 3]
    assert [(r["index"], r["field"]) for r in body["rejected"]] == [(1, "to"), (2, "text")]


def test_a_batch_over_the_configured_size_is_refused(client: httpx.Client) -> None:
    response = client.post("/v1/messages/batch", json={"messages": [message()] * 51})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "messages"]


def test_a_body_over_the_size_limit_is_a_413(client: httpx.Client) -> None:
    response = client.post("/v1/messages/batch", json={"messages": [message(text="y" * 900)] * 40})
    assert response.status_code == 413


def test_an_unknown_message_is_a_404(client: httpx.Client) -> None:
    assert client.get("/v1/messages/999999").status_code == 404


def test_the_openapi_document_describes_the_endpoints(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/messages", "/v1/messages/batch", "/v1/messages/{message_id}"} <= set(paths)


def test_the_same_idempotency_key_returns_the_same_id(
    client: httpx.Client, database: Database
) -> None:
    first = client.post("/v1/messages", json=message(idempotency_key="k-1")).json()["id"]
    again = client.post("/v1/messages", json=message(idempotency_key="k-1")).json()["id"]
    assert first == again


def test_a_message_id_beyond_64_bits_is_a_422_not_a_server_error(client: httpx.Client) -> None:
    response = client.get(f"/v1/messages/{2**64}")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "message_id"]


def test_a_body_that_is_not_utf8_is_a_422_not_a_server_error(client: httpx.Client) -> None:
    response = client.post("/v1/messages", content=b"\xff{}", headers={"Content-Type": "text/csv"})
    assert response.status_code == 422


def test_a_number_json_reads_as_infinity_is_a_422_naming_the_field(client: httpx.Client) -> None:
    body = b'{"to": 1e400, "text": "hi", "provider": "cue"}'
    response = client.post(
        "/v1/messages", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "to"]


def test_a_message_for_a_vendor_without_its_base_url_is_a_422_naming_the_setting(
    database_url: str, redis_client: redis.Redis, redis_url: str
) -> None:
    with served_api(
        database_url=database_url, redis_url=redis_url, skycore=TEST_CREDENTIALS["skycore"]
    ) as client:
        response = client.post("/v1/messages", json=message(provider="skycore"))
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "provider"]
    assert error["msg"] == "skycore cannot send: SKYCORE__BASE_URL is not set"
    assert redis_client.llen("sms.skycore") == 0


def test_the_api_says_at_start_up_which_vendor_has_no_base_url(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(database_url=database_url, skycore=TEST_CREDENTIALS["skycore"])
    with caplog.at_level(logging.WARNING, logger="smsdispatch.api.app"):
        create_app(settings)
    [line] = [r.getMessage() for r in caplog.records if r.name == "smsdispatch.api.app"]
    assert line.startswith("skycore is in the provider catalog but SKYCORE__BASE_URL is not set")


def test_a_message_without_a_provider_is_routed_and_says_which_vendor_took_it(
    client: httpx.Client,
) -> None:
    body = {k: v for k, v in message(to="+919876543210").items() if k != "provider"}
    response = client.post("/v1/messages", json=body)
    assert response.status_code == 202
    state = client.get(f"/v1/messages/{response.json()['id']}").json()
    assert (state["provider"], state["route"]) == ("smsbuddy", "india")


def test_a_routed_batch_reports_a_message_no_route_can_carry_by_index(
    client: httpx.Client,
) -> None:
    batch = [
        {"to": "+919876543210", "text": "ok"},
        {"to": "+919876543211", "text": "a" * 1000},  # over SMSBuddy's 918
    ]
    response = client.post("/v1/messages/batch", json={"messages": batch})
    answer = response.json()
    assert len(answer["accepted"]) == 1
    assert [(r["index"], r["field"]) for r in answer["rejected"]] == [(1, "provider")]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/messages", message(text="a\x00b"), "text"),
        ("/v1/campaigns", {"name": "a\x00b", "provider": "cue", "template": "hi"}, "name"),
        ("/v1/campaigns", {"name": "ok", "provider": "cue", "template": "h\x00i"}, "template"),
    ],
    ids=["message-text", "campaign-name", "campaign-template"],
)
def test_a_nul_character_is_refused_naming_its_field(
    client: httpx.Client, path: str, body: dict[str, Any], field: str
) -> None:
    response = client.post(path, json=body)
    assert response.status_code == 422
    assert [e["loc"][-1] for e in response.json()["detail"]] == [field]
