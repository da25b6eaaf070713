"""The API's access log: method, path, status and duration; never a report
token, a query string, a key or a body."""

from __future__ import annotations

import logging
import re

import httpx
import pytest

from smsdispatch.api.access_log import loggable_path
from smsdispatch.api.app import create_app
from smsdispatch.local.serve import BackgroundServer
from smsdispatch.reports.urls import report_token
from tests.api_server import KEY, served_api
from tests.settings import make_settings

SECRET = "report-secret-for-tests-0123456789"
ACCESS = "smsdispatch.api.access"


def access_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == ACCESS]


def test_a_report_webhook_request_is_logged_with_its_token_replaced(
    caplog: pytest.LogCaptureFixture, database_url: str
) -> None:
    settings = make_settings(database_url=database_url, report_secret=SECRET)
    token = report_token(settings, "cue")
    assert token is not None
    server = BackgroundServer(create_app(settings))
    server.start()
    try:
        with caplog.at_level(logging.INFO, logger=ACCESS), httpx.Client() as http:
            http.get(f"{server.root}/reports/cue/{token}?msisdn=27821230001&status=1")
    finally:
        server.stop()
    [line] = access_lines(caplog)
    assert re.fullmatch(r"GET /reports/cue/<token> 400 \d+\.\dms", line), line
    assert token not in caplog.text
    assert "27821230001" not in caplog.text


def test_a_request_is_logged_with_method_path_status_and_duration_and_no_query(
    caplog: pytest.LogCaptureFixture, database_url: str
) -> None:
    with served_api(database_url=database_url) as http, caplog.at_level(logging.INFO, ACCESS):
        http.get("/v1/messages/12345", params={"client_reference": "order-77"})
        refused_body = {"to": "+27821230001", "text": "Your code is 1234", "provider": "nope"}
        http.post("/v1/messages", json=refused_body)
    not_found, refused = access_lines(caplog)
    assert re.fullmatch(r"GET /v1/messages/12345 404 \d+\.\dms", not_found), not_found
    assert re.fullmatch(r"POST /v1/messages 422 \d+\.\dms", refused), refused
    for private in ("order-77", "27821230001", "Your code", KEY):
        assert private not in caplog.text


def test_the_access_log_is_on_whatever_the_root_level(
    caplog: pytest.LogCaptureFixture, database_url: str
) -> None:
    root = logging.getLogger()
    before = root.level
    root.setLevel(logging.WARNING)  # as `smsdispatch api` runs by default
    try:
        with served_api(database_url=database_url) as http:
            http.get("/healthz")
    finally:
        root.setLevel(before)
    [line] = access_lines(caplog)
    assert line.startswith("GET /healthz 200 ")


def test_api_access_log_false_turns_it_off(
    caplog: pytest.LogCaptureFixture, database_url: str
) -> None:
    with (
        served_api(database_url=database_url, api_access_log=False) as http,
        caplog.at_level(logging.INFO, ACCESS),
    ):
        http.get("/healthz")
    assert access_lines(caplog) == []


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/reports/cue/abc123", "/reports/cue/<token>"),
        ("/reports/cue/abc123/extra", "/reports/cue/<token>/extra"),
        ("/reports/cue", "/reports/cue"),
        ("/reports//abc", "/reports//<token>"),
        ("/v1/messages/7", "/v1/messages/7"),
        ("/sms/reports/cue/abc123", "/sms/reports/cue/<token>"),  # under a root_path
    ],
)
def test_only_the_report_token_is_replaced_in_a_path(path: str, logged: str) -> None:
    assert loggable_path(path) == logged
