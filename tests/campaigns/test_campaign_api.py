"""Campaigns over HTTP: create, upload a CSV, preview, schedule, control, read."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from tests.api_server import served_api

CSV = "phone,name\n+12125551001,Ana\nnope,Bo\n+12125551002,\n+12125551003,Cy\n"


@pytest.fixture
def client(database_url: str, redis_client: redis.Redis, redis_url: str) -> Iterator[httpx.Client]:
    with served_api(
        database_url=database_url,
        redis_url=redis_url,
        api_max_body_bytes=2_000,
        api_max_upload_bytes=50_000,
    ) as http:
        yield http


def campaign(**overrides: Any) -> dict[str, Any]:
    return {"name": "sale", "provider": "cue", "template": "Hi {name}, 20% off"} | overrides


def created(client: httpx.Client, **overrides: Any) -> int:
    response = client.post("/v1/campaigns", json=campaign(**overrides))
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def upload(client: httpx.Client, campaign_id: int, body: str) -> httpx.Response:
    return client.post(
        f"/v1/campaigns/{campaign_id}/recipients",
        content=body.encode(),
        headers={"Content-Type": "text/csv"},
    )


def test_campaigns_need_an_api_key(client: httpx.Client) -> None:
    response = client.post("/v1/campaigns", json=campaign(), headers={"X-API-Key": "wrong"})
    assert response.status_code == 401


def test_an_uploaded_csv_imports_the_good_rows_and_reports_each_bad_one_by_line(
    client: httpx.Client,
) -> None:
    campaign_id = created(client)
    response = upload(client, campaign_id, CSV)
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["imported"], result["rejected"]) == (2, 2)
    assert [(r["line"], r["reason"]) for r in result["rejections"]] == [
        (3, "phone 'nope' cannot be read as a phone number (The string supplied did not seem "
         "to be a phone number.)"),
        (4, "column 'name' is empty"),
    ]  # fmt: skip
    state = client.get(f"/v1/campaigns/{campaign_id}").json()
    assert (state["status"], state["imported"], state["counts"]) == ("draft", 2, {"held": 2})


def test_a_recipient_list_may_be_larger_than_other_requests(client: httpx.Client) -> None:
    campaign_id = created(client)
    big = "phone,name\n" + "".join(f"+1212555{1000 + i:04d},N{i}\n" for i in range(300))
    assert len(big) > 2_000
    assert upload(client, campaign_id, big).json()["imported"] == 300
    too_big = big * 20
    assert upload(client, campaign_id, too_big).status_code == 413


def test_preview_shows_rendered_samples_and_the_segment_total(client: httpx.Client) -> None:
    campaign_id = created(client)
    upload(client, campaign_id, CSV)
    preview = client.get(f"/v1/campaigns/{campaign_id}/preview", params={"samples": 1}).json()
    assert preview["messages"] == 2
    assert preview["segments"] == 2
    assert preview["samples"] == [
        {"recipient": "+1212****001", "text": "Hi Ana, 20% off", "encoding": "gsm7", "segments": 1}
    ]


def test_schedule_pause_and_cancel_move_the_campaign(
    client: httpx.Client, redis_client: redis.Redis
) -> None:
    campaign_id = created(client)
    upload(client, campaign_id, CSV)
    scheduled = client.post(
        f"/v1/campaigns/{campaign_id}/schedule", json={"start_at": "2030-01-01T09:00:00+01:00"}
    )
    assert scheduled.status_code == 200
    assert scheduled.json()["start_at"] == "2030-01-01T08:00:00Z"
    assert client.post(f"/v1/campaigns/{campaign_id}/pause").json()["status"] == "paused"
    cancelled = client.post(f"/v1/campaigns/{campaign_id}/cancel").json()
    assert (cancelled["status"], cancelled["counts"]) == ("cancelled", {"cancelled": 2})


def test_an_action_the_status_does_not_allow_is_a_conflict(client: httpx.Client) -> None:
    campaign_id = created(client)
    response = client.post(f"/v1/campaigns/{campaign_id}/resume")
    assert response.status_code == 409
    assert response.json()["detail"] == (
        f"campaign {campaign_id} is draft; resume applies to a paused campaign"
    )


def test_recipients_for_a_running_campaign_are_a_conflict(client: httpx.Client) -> None:
    campaign_id = created(client)
    upload(client, campaign_id, CSV)
    assert client.post(f"/v1/campaigns/{campaign_id}/start").status_code == 200
    response = upload(client, campaign_id, CSV)
    assert response.status_code == 409
    assert f"campaign {campaign_id} is running" in response.json()["detail"]


def test_a_bad_field_is_named(client: httpx.Client) -> None:
    response = client.post("/v1/campaigns", json=campaign(template="Hi {name"))
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "template"]
    assert "unmatched '{'" in error["msg"]


def test_a_csv_without_the_phone_column_is_refused_as_a_whole(client: httpx.Client) -> None:
    campaign_id = created(client)
    response = upload(client, campaign_id, "msisdn,name\n+12125551001,Ana\n")
    assert response.status_code == 422
    assert "no 'phone' column" in response.json()["detail"][0]["msg"]


def test_an_unknown_campaign_is_not_found(client: httpx.Client) -> None:
    assert client.get("/v1/campaigns/999").status_code == 404
    assert client.post("/v1/campaigns/999/start").status_code == 404
    assert upload(client, 999, CSV).status_code == 404


def test_a_campaign_id_beyond_64_bits_is_a_422_not_a_server_error(client: httpx.Client) -> None:
    response = client.post(f"/v1/campaigns/{2**64}/schedule", json={})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "campaign_id"]


def test_a_campaign_without_a_provider_is_routed_and_previews_its_vendor_split(
    client: httpx.Client,
) -> None:
    body = {"name": "sale", "template": "Hi {name}, 20% off"}
    response = client.post("/v1/campaigns", json=body)
    assert response.status_code == 201, response.text
    campaign = response.json()
    assert (campaign["provider"], campaign["sender"]) == ("auto", None)
    assert upload(client, campaign["id"], CSV).json()["imported"] == 2

    preview = client.get(f"/v1/campaigns/{campaign['id']}/preview").json()
    assert preview["routed"] is True
    assert sum(v["messages"] for v in preview["vendors"]) == pytest.approx(2)
    assert all(v["cost"] is None for v in preview["vendors"])  # the shipped catalog has no prices
    read = client.get(f"/v1/campaigns/{campaign['id']}").json()
    assert sum(read["by_vendor"].values()) == 2


def test_a_routed_campaign_with_a_sender_of_its_own_is_refused_naming_the_field(
    client: httpx.Client,
) -> None:
    response = client.post("/v1/campaigns", json=campaign(provider="auto", sender="CUESMS"))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "sender"]
