"""The delivery-report webhooks over real HTTP: each vendor's form, and refusals."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from smsdispatch.api.app import create_app
from smsdispatch.config.settings import Settings
from smsdispatch.local.processes import wait_until
from smsdispatch.local.serve import BackgroundServer
from smsdispatch.local.simulators import SimulatorServer
from smsdispatch.reports.urls import report_url
from smsdispatch.store.db import Database
from smsdispatch.store.models import delivery_reports, messages
from smsdispatch.store.outbox import claim, write_results
from tests.settings import TEST_CREDENTIALS, make_settings
from tests.test_outbox import NOW, accepted_result, add_rows, reference_of

SECRET = "report-secret-for-tests-0123456789"


@dataclass
class Webhooks:
    settings: Settings
    http: httpx.Client

    def url(self, provider: str) -> str:
        url = report_url(self.settings, provider)
        assert url is not None
        return url


@pytest.fixture
def webhooks(database_url: str, database: Database) -> Iterator[Webhooks]:
    settings = make_settings(
        database_url=database_url,
        report_secret=SECRET,
    )
    server = BackgroundServer(create_app(settings))
    settings = settings.model_copy(update={"public_base_url": server.root})
    server.start()
    try:
        with httpx.Client() as http:
            yield Webhooks(settings, http)
    finally:
        server.stop()


def status_of(db: Database, mid: int) -> tuple[str, str | None]:
    with db.session() as s:
        row = s.execute(
            select(messages.c.status, messages.c.vendor_status).where(messages.c.id == mid)
        ).one()
    return row.status, row.vendor_status


def stored_outcomes(db: Database) -> list[str]:
    with db.session() as s:
        return list(s.scalars(select(delivery_reports.c.outcome).order_by(delivery_reports.c.id)))


# One delivered report per vendor, in the form its module documents.
# (webhooks, our reference, the vendor's tracking id)
Send = Callable[[Webhooks, str, str], httpx.Response]


def cue(w: Webhooks, ref: str, tid: str) -> httpx.Response:
    return w.http.get(w.url("cue"), params={"message_id": ref, "status": 1})


def messangi(w: Webhooks, ref: str, tid: str) -> httpx.Response:
    body = {"id": tid, "externalId": ref, "status": "DELIVRD"}
    return w.http.post(w.url("messangi"), json=body)


def smsbuddy(w: Webhooks, ref: str, tid: str) -> httpx.Response:
    return w.http.post(w.url("smsbuddy"), data={"id": tid, "status": "DELIVRD"})


def restcomm(w: Webhooks, ref: str, tid: str) -> httpx.Response:
    form = {"MessageSid": tid, "MessageStatus": "delivered", "AccountSid": "AC1"}
    return w.http.post(w.url("restcomm"), data=form)


def skycore(w: Webhooks, ref: str, tid: str) -> httpx.Response:
    return w.http.post(w.url("skycore"), json={"tracking-id": tid, "status": "DELIVERED"})


VENDORS: dict[str, tuple[Send, str]] = {
    "cue": (cue, "1"),
    "messangi": (messangi, "DELIVRD"),
    "smsbuddy": (smsbuddy, "DELIVRD"),
    "restcomm": (restcomm, "delivered"),
    "skycore": (skycore, "DELIVERED"),
}


@pytest.mark.parametrize("vendor", list(VENDORS))
def test_each_vendors_report_in_its_own_form_delivers_the_message(
    webhooks: Webhooks, database: Database, vendor: str
) -> None:
    send, word = VENDORS[vendor]
    [mid] = add_rows(database, 1, provider=vendor, status="accepted", tracking_id="V-1")
    response = send(webhooks, reference_of(database, mid), "V-1")
    assert response.status_code == 200, response.text
    assert response.json() == {"result": "applied"}
    assert status_of(database, mid) == ("delivered", word)


def test_a_report_with_a_wrong_token_is_refused_changes_nothing_and_logs_no_token(
    webhooks: Webhooks, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    [mid] = add_rows(database, 1, provider="restcomm", status="accepted", tracking_id="V-1")
    forged = webhooks.url("restcomm")[:-6] + "abcdef"
    with caplog.at_level(logging.WARNING, logger="smsdispatch.reports.intake"):
        response = webhooks.http.post(
            forged, data={"MessageSid": "V-1", "MessageStatus": "delivered"}
        )
    assert response.status_code == 404
    assert status_of(database, mid) == ("accepted", None)
    assert stored_outcomes(database) == []
    assert "wrong token" in caplog.text
    assert forged.rsplit("/", 1)[1] not in caplog.text
    assert webhooks.url("restcomm").rsplit("/", 1)[1] not in caplog.text


def test_another_vendors_token_is_refused(webhooks: Webhooks, database: Database) -> None:
    [mid] = add_rows(database, 1, provider="restcomm", status="accepted", tracking_id="V-1")
    skycore_token = webhooks.url("skycore").rsplit("/", 1)[1]
    url = webhooks.url("restcomm").rsplit("/", 1)[0] + "/" + skycore_token
    response = webhooks.http.post(url, data={"MessageSid": "V-1", "MessageStatus": "delivered"})
    assert response.status_code == 404
    assert status_of(database, mid) == ("accepted", None)


def test_a_report_for_an_unknown_tracking_id_is_a_404_and_changes_nothing(
    webhooks: Webhooks, database: Database
) -> None:
    [mid] = add_rows(database, 1, provider="skycore", status="accepted", tracking_id="V-1")
    response = skycore(webhooks, reference_of(database, mid), "V-unknown")
    assert response.status_code == 404
    assert status_of(database, mid) == ("accepted", None)
    assert stored_outcomes(database) == ["unmatched"]


def test_a_cue_report_naming_a_row_id_that_is_not_its_reference_is_a_404_and_changes_nothing(
    webhooks: Webhooks, database: Database
) -> None:
    # Only rows sent before migration 0005 keep their id as their reference.
    [mid] = add_rows(database, 1, provider="cue", status="accepted")
    response = webhooks.http.post(
        webhooks.url("cue"), params={"message_id": str(mid), "status": "1"}
    )
    assert response.status_code == 404
    assert status_of(database, mid) == ("accepted", None)
    assert stored_outcomes(database) == ["unmatched"]


@pytest.mark.parametrize(
    ("vendor", "request_kwargs"),
    [
        ("messangi", {"content": b"{not json"}),
        ("messangi", {"content": b"[" * 5000 + b"]" * 5000}),
        ("skycore", {"content": b'{"tracking-id": ' + b"1" * 5000 + b"}"}),
        ("messangi", {"json": {"id": "V-1", "status": "NO-SUCH-WORD"}}),
        ("skycore", {"json": ["tracking-id", "V-1"]}),
        ("restcomm", {"data": {"MessageStatus": "delivered"}}),
        ("cue", {"params": {"message_id": "1", "status": "%d"}}),
        # Not a reference, nor a row id as the references of old rows are.
        ("cue", {"params": {"message_id": "01", "status": "1"}}),
        ("skycore", {"json": {"tracking-id": "T" * 200, "status": "DELIVERED"}}),
    ],
)
def test_a_malformed_report_is_a_400_changes_nothing_and_is_kept_raw(
    webhooks: Webhooks, database: Database, vendor: str, request_kwargs: dict[str, Any]
) -> None:
    [mid] = add_rows(database, 1, provider=vendor, status="accepted", tracking_id="V-1")
    response = webhooks.http.post(webhooks.url(vendor), **request_kwargs)
    assert response.status_code == 400
    assert status_of(database, mid) == ("accepted", None)
    assert stored_outcomes(database) == ["malformed"]


@pytest.mark.parametrize(
    ("vendor", "request_kwargs"),
    [
        ("cue", {"params": {"\x00": "1"}}),
        ("skycore", {"json": {"tracking-id": "V-1\x00", "status": "DELIVERED"}}),
        (
            "restcomm",
            {"data": {"MessageSid": "V-1", "MessageStatus": "failed", "ErrorCode": "\x00"}},
        ),
    ],
)
def test_a_report_holding_a_nul_character_is_a_400_and_is_kept_raw(
    webhooks: Webhooks, database: Database, vendor: str, request_kwargs: dict[str, Any]
) -> None:
    # PostgreSQL text cannot hold NUL: this was a 500 there.
    [mid] = add_rows(database, 1, provider=vendor, status="accepted", tracking_id="V-1")
    response = webhooks.http.post(webhooks.url(vendor), **request_kwargs)
    assert response.status_code == 400
    assert status_of(database, mid) == ("accepted", None)
    assert stored_outcomes(database) == ["malformed"]


def test_a_repeated_report_is_answered_200_and_changes_nothing(
    webhooks: Webhooks, database: Database
) -> None:
    [mid] = add_rows(database, 1, provider="skycore", status="accepted", tracking_id="V-1")
    ref = reference_of(database, mid)
    first, again = skycore(webhooks, ref, "V-1"), skycore(webhooks, ref, "V-1")
    late = webhooks.http.post(
        webhooks.url("skycore"), json={"tracking-id": "V-1", "status": "sent"}
    )
    assert [r.json()["result"] for r in (first, again, late)] == ["applied", "ignored", "ignored"]
    assert status_of(database, mid) == ("delivered", "DELIVERED")


def test_no_report_url_is_built_without_a_secret() -> None:
    settings = make_settings(public_base_url="https://sms.example.com")
    assert report_url(settings, "cue") is None


def test_a_report_that_beats_the_send_being_recorded_settles_it_and_the_send_adds_its_id(
    webhooks: Webhooks, database: Database
) -> None:
    [mid] = add_rows(database, 1, provider="cue")
    with database.session() as s, s.begin():
        [row] = claim(s, [mid], NOW, "t1")

    response = cue(webhooks, reference_of(database, mid), "")
    assert response.json() == {"result": "applied"}  # answered at once: no wait for the worker
    with database.session() as s, s.begin():
        write_results(s, [accepted_result(row.ref, "CUE-1")], NOW)

    with database.session() as s:
        found = s.execute(
            select(messages.c.status, messages.c.tracking_id).where(messages.c.id == mid)
        ).one()
    assert (found.status, found.tracking_id) == ("delivered", "CUE-1")


def test_skycore_retries_a_postback_refused_as_unknown_until_the_message_is_recorded(
    webhooks: Webhooks, database: Database, simulators: SimulatorServer
) -> None:
    control = simulators["skycore"].state.control
    control.reports, control.report_delay_seconds = True, 0.0
    control.report_retry_seconds, control.postback_url = 0.5, webhooks.url("skycore")
    sent = httpx.post(
        f"{simulators.root}/skycore/API",
        headers={"x-api-key": TEST_CREDENTIALS["skycore"]["api_key"]},
        json={"action": "sendsms", "message-text": "hi", "to": "12025550100", "from": "00000"},
    ).json()
    tracking_id = sent["tracking-id"]
    fate = simulators["skycore"].state.fates[tracking_id]
    wait_until(lambda: fate.callbacks == [404], 5, "the first postback, refused")

    [mid] = add_rows(database, 1, provider="skycore", status="accepted", tracking_id=tracking_id)
    wait_until(lambda: fate.callbacks == [404, 200], 5, "the retried postback")
    assert status_of(database, mid) == ("delivered", "DELIVERED")
