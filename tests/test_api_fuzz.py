"""Malformed requests to every endpoint of the HTTP API: none is answered 5xx.

The API is served over real HTTP (smsdispatch.local.serve.BackgroundServer) on a
migrated database with one campaign and one message in it, and fuzzed two ways:

* From its live OpenAPI document (schemathesis): every operation it lists,
  /v1/messages (POST and GET), /v1/messages/batch, /v1/messages/{id} (GET
  and its cancel), /v1/vendors..., /v1/routes..., /v1/callbacks... and every
  /v1/campaigns endpoint, with
  bodies, path and query parameters that fit the schema and that break it
  (wrong types, missing and extra fields, numbers too large for any
  column); three requests in four carry a valid API key
  (so they reach the handlers), the others none; path ids point at the
  existing campaign or message half the time (so the handlers do work).
* With explicit strategies (hypothesis), what a schema cannot describe: raw
  bodies for every body-taking endpoint (truncated JSON, invalid UTF-8,
  numbers past 64 bits, garbage) under right and wrong content types,
  including the campaign CSV upload (text/csv); the delivery-report webhooks
  GET and POST /reports/{vendor}/{token} with each vendor's valid token
  (derived with smsdispatch.reports.urls), forged tokens and unknown vendors, and
  bodies as JSON, as forms and as garbage; and GET /metrics, which is not in
  the document.

Each request's answer must be below 500 (schemathesis's `not_a_server_error`
check for the first, the same rule asserted for the second). The example
counts keep the whole module to well under a minute on a loaded 2-core machine.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote, urlencode

import httpx
import pytest
import redis
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import BaseSchema, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok

from smsdispatch.api.app import create_app
from smsdispatch.local.serve import BackgroundServer
from smsdispatch.providers.registry import ADAPTERS
from smsdispatch.reports.urls import report_token
from tests.settings import make_settings

KEY = "fuzz-api-key-0123456789"
SECRET = "fuzz-report-secret-0123456789"
METRICS_TOKEN = "fuzz-metrics-token-0123456789"
# Examples per test; FUZZ_EXAMPLES=1000 for a deeper run by hand.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))


@dataclass
class LiveApi:
    root: str
    campaign_id: int
    message_id: int
    message_reference: str  # what a vendor's report names the message by


@pytest.fixture
def live_api(database_url: str, redis_client: redis.Redis, redis_url: str) -> Iterator[LiveApi]:
    """The API over real HTTP with a campaign (with recipients) and a message to act on."""
    settings = make_settings(
        database_url=database_url,
        redis_url=redis_url,
        api_keys=[KEY],
        report_secret=SECRET,
        api_max_body_bytes=20_000,
        api_max_upload_bytes=50_000,
        api_max_batch=20,
        metrics_token=METRICS_TOKEN,
    )
    server = BackgroundServer(create_app(settings))
    server.start()
    try:
        with httpx.Client(base_url=server.root, headers={"X-API-Key": KEY}) as http:
            created = http.post(
                "/v1/campaigns",
                json={"name": "fuzz", "provider": "cue", "template": "Hi {name}"},
            )
            assert created.status_code == 201, created.text
            campaign_id = int(created.json()["id"])
            uploaded = http.post(
                f"/v1/campaigns/{campaign_id}/recipients",
                content=b"phone,name\n+12125551001,Ana\n+12125551002,Bo\n",
                headers={"Content-Type": "text/csv"},
            )
            assert uploaded.status_code == 200, uploaded.text
            sent = http.post(
                "/v1/messages", json={"to": "+27821230001", "text": "hi", "provider": "cue"}
            )
            assert sent.status_code == 202, sent.text
            message_id = int(sent.json()["id"])
            reference = http.get(f"/v1/messages/{message_id}").json()["reference"]
            yield LiveApi(server.root, campaign_id, message_id, reference)
    finally:
        server.stop()


@pytest.fixture
def api_schema(live_api: LiveApi) -> BaseSchema:
    """The API's own OpenAPI document, as it serves it."""
    return schemathesis.openapi.from_url(f"{live_api.root}/openapi.json")


# Every operation the document lists (checked below), fuzzed one by one.
OPERATIONS = [
    ("POST", "/v1/messages"),
    ("POST", "/v1/messages/batch"),
    ("GET", "/v1/messages/{message_id}"),
    ("GET", "/v1/messages"),
    ("POST", "/v1/messages/{message_id}/cancel"),
    ("GET", "/v1/vendors"),
    ("POST", "/v1/vendors/{vendor}/pause"),
    ("POST", "/v1/vendors/{vendor}/resume"),
    ("GET", "/v1/routes"),
    ("POST", "/v1/routes/{route}/vendors/{vendor}/pin"),
    ("DELETE", "/v1/routes/{route}/vendors/{vendor}/pin"),
    ("POST", "/v1/campaigns"),
    ("GET", "/v1/campaigns"),
    ("GET", "/v1/campaigns/{campaign_id}"),
    ("POST", "/v1/campaigns/{campaign_id}/recipients"),
    ("GET", "/v1/campaigns/{campaign_id}/preview"),
    ("POST", "/v1/campaigns/{campaign_id}/schedule"),
    ("POST", "/v1/campaigns/{campaign_id}/start"),
    ("POST", "/v1/campaigns/{campaign_id}/pause"),
    ("POST", "/v1/campaigns/{campaign_id}/resume"),
    ("POST", "/v1/campaigns/{campaign_id}/cancel"),
    ("GET", "/v1/callbacks"),
    ("POST", "/v1/callbacks/replay"),
    ("POST", "/v1/callbacks/{callback_id}/replay"),
    ("GET", "/reports/{provider}/{token}"),
    ("POST", "/reports/{provider}/{token}"),
]
FUZZ = settings(
    max_examples=EXAMPLES,
    # The suite draws the same examples on every run, so CI fails only for a
    # change of ours; FUZZ_RANDOM=1 (with FUZZ_EXAMPLES) explores new ones.
    derandomize=os.environ.get("FUZZ_RANDOM") != "1",
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)


def test_the_fuzzer_covers_every_operation_in_the_openapi_document(
    api_schema: BaseSchema,
) -> None:
    results = list(api_schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results), "schemathesis could not read every operation"
    assert {(op.method.upper(), op.path) for op in operations} == set(OPERATIONS)


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
@FUZZ
@given(data=st.data())
def test_no_operation_in_the_openapi_document_answers_a_server_error(
    live_api: LiveApi, api_schema: BaseSchema, method: str, path: str, data: st.DataObject
) -> None:
    operation = api_schema[path][method]
    mode = data.draw(st.sampled_from([GenerationMode.POSITIVE, GenerationMode.NEGATIVE]))
    case = data.draw(operation.as_strategy(generation_mode=mode))
    # Path ids name the existing campaign or message half the time.
    existing = data.draw(st.booleans())
    if case.path_parameters and existing:
        if "campaign_id" in case.path_parameters:
            case.path_parameters["campaign_id"] = live_api.campaign_id
        if "message_id" in case.path_parameters:
            case.path_parameters["message_id"] = live_api.message_id
    with_key = data.draw(st.sampled_from([True, True, True, False]))
    headers = {"X-API-Key": KEY if with_key else ""}
    response = case.call(base_url=live_api.root, headers=headers)
    case.validate_response(response, checks=[not_a_server_error])


# -- what the document cannot describe ---------------------------------------

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
# Numbers no column holds, and one past Python's 4300-digit limit for int().
HUGE_NUMBERS = st.sampled_from(
    ["9" * 30, "-" + "9" * 30, str(2**63), str(2**64), "1e400", "-1e400", "1" + "0" * 5000]
)
CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "application/json; charset=latin-1",
        "text/csv",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
        "application/octet-stream",
        "",
    ]
)


@st.composite
def json_documents(draw: st.DrawFn, fields: list[str]) -> bytes:
    """A JSON object with the endpoint's field names holding anything, as text."""
    keys = (st.sampled_from(fields) | st.text(max_size=12)) if fields else st.text(max_size=12)
    values = JSON_VALUES.map(json.dumps) | HUGE_NUMBERS
    members = draw(st.dictionaries(keys, values, max_size=len(fields) + 1))
    return ("{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in members.items()) + "}").encode()


@st.composite
def malformed_bodies(draw: st.DrawFn, fields: list[str]) -> bytes:
    """Bodies a client should never send: wrong, truncated, nested too deep, not UTF-8."""
    document = draw(json_documents(fields))
    kind = draw(
        st.sampled_from(["document", "truncated", "wrapped", "deep", "not utf-8", "bytes", "csv"])
    )
    if kind == "truncated":
        return document[: draw(st.integers(0, max(len(document) - 1, 0)))]
    if kind == "wrapped":
        # An array where an object belongs.
        return b"[" + document + b"]"
    if kind == "deep":
        depth = draw(st.integers(100, 5000))
        return b"[" * depth + b"]" * depth
    if kind == "not utf-8":
        at = draw(st.integers(0, len(document)))
        return (
            document[:at]
            + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80"]))
            + document[at:]
        )
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "csv":
        header = draw(
            st.sampled_from(
                [b"phone,name", b"phone", b"", b"phone,phone", b"\xef\xbb\xbfphone,name"]
            )
        )
        rows = draw(
            st.lists(st.binary(max_size=30) | st.text(max_size=30).map(str.encode), max_size=5)
        )
        return b"\n".join([header, *rows])
    return document


# Every endpoint that reads a body, with the field names its body has.
BODIES = [
    (
        "/v1/messages",
        ["to", "text", "provider", "sender", "client_reference", "idempotency_key", "priority"],
    ),
    ("/v1/messages/batch", ["messages"]),
    (
        "/v1/campaigns",
        [
            "name",
            "provider",
            "template",
            "sender",
            "start_at",
            "end_at",
            "timezone",
            "default_region",
        ],
    ),
    ("/v1/campaigns/{campaign_id}/schedule", ["start_at", "end_at", "timezone"]),
    ("/v1/campaigns/{campaign_id}/recipients", ["phone", "name"]),
    ("/v1/campaigns/{campaign_id}/start", []),
]


@pytest.mark.parametrize(("path", "fields"), BODIES, ids=[p for p, _ in BODIES])
@FUZZ
@given(data=st.data())
def test_no_malformed_body_is_answered_with_a_server_error(
    live_api: LiveApi, path: str, fields: list[str], data: st.DataObject
) -> None:
    body = data.draw(malformed_bodies(fields))
    content_type = data.draw(CONTENT_TYPES)
    url = live_api.root + path.format(campaign_id=live_api.campaign_id)
    response = httpx.post(
        url, content=body, headers={"X-API-Key": KEY, "Content-Type": content_type}, timeout=30
    )
    assert response.status_code < 500, (body[:200], content_type, response.text)


# Every vendor's report fields, so bodies and queries look like reports often.
REPORT_FIELDS = [
    "message_id", "status", "id", "externalId", "data", "custom", "MessageSid",
    "MessageStatus", "ErrorCode", "AccountSid", "tracking-id", "error-code", "error-info",
]  # fmt: skip


@st.composite
def report_paths(draw: st.DrawFn) -> str:
    """/reports/<vendor>/<token>: valid tokens mostly, forged and misplaced ones too."""
    settings = make_settings(report_secret=SECRET)
    vendor = draw(st.sampled_from(sorted(ADAPTERS)))
    token = report_token(settings, vendor)
    assert token is not None
    kind = draw(st.sampled_from(["valid", "valid", "valid", "forged", "other vendor", "unknown"]))
    if kind == "forged":
        token = draw(
            st.sampled_from([token[:-1], token + "0", token.upper(), ""]) | st.text(max_size=60)
        )
    elif kind == "other vendor":
        other = draw(st.sampled_from(sorted(set(ADAPTERS) - {vendor})))
        token = report_token(settings, other) or ""
    elif kind == "unknown":
        vendor = draw(st.text(min_size=1, max_size=20))
    return f"/reports/{quote(vendor, safe='')}/{quote(token, safe='')}"


@st.composite
def report_values(draw: st.DrawFn, message_id: int, reference: str) -> str:
    return draw(
        st.sampled_from(
            [reference, str(message_id), "DELIVRD", "delivered", "DELIVERED", "1", "V-1"]
        )
        | HUGE_NUMBERS
        | st.text(max_size=40)
    )


@FUZZ
@given(data=st.data())
def test_no_delivery_report_is_answered_with_a_server_error(
    live_api: LiveApi, data: st.DataObject
) -> None:
    path = data.draw(report_paths())
    method = data.draw(st.sampled_from(["GET", "POST"]))
    keys = st.sampled_from(REPORT_FIELDS) | st.text(max_size=12)
    values = report_values(live_api.message_id, live_api.message_reference)
    query = data.draw(st.dictionaries(keys, values, max_size=4))
    fields = data.draw(st.dictionaries(keys, values, max_size=5))
    kind = data.draw(st.sampled_from(["none", "json", "form", "other"]))
    content_type = data.draw(CONTENT_TYPES)
    if kind == "json":
        body = data.draw(st.just(json.dumps(fields).encode()) | malformed_bodies(REPORT_FIELDS))
    elif kind == "form":
        body = urlencode(fields).encode()
    elif kind == "other":
        body = data.draw(st.binary(max_size=200))
    else:
        body = b""
    response = httpx.request(
        method,
        live_api.root + path,
        params=query,
        content=body,
        headers={"Content-Type": content_type},
        timeout=30,
    )
    assert response.status_code < 500, (method, path, query, body[:200], response.text)


@FUZZ
@given(
    authorization=st.none()
    | st.just(f"Bearer {METRICS_TOKEN}")
    | st.text(max_size=60).map(lambda t: f"Bearer {t}")
    | st.text(max_size=60),
    query=st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=3),
)
def test_the_metrics_endpoint_answers_anything_without_a_server_error(
    live_api: LiveApi, authorization: str | None, query: dict[str, str]
) -> None:
    # As bytes: httpx would refuse to encode a header that is not ASCII.
    headers = {} if authorization is None else {b"Authorization": authorization.encode()}
    try:
        response = httpx.get(live_api.root + "/metrics", params=query, headers=headers, timeout=30)
    except httpx.LocalProtocolError:
        return  # a header value httpx itself will not send (a newline, say)
    assert response.status_code < 500, response.text
