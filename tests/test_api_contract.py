"""The OpenAPI document tells the truth about the API.

One short run of schemathesis with every check (`schemathesis run --checks
all`, in process: its engine runs the same phases as the CLI: coverage,
fuzzing and stateful) against the live API must find no failure in any
operation: no undocumented status code, no schema-valid request refused, no
schema-violating one accepted, no answer off its schema, an `Allow` that
lists the path's methods, auth refused where documented. The document's own
rules come from the catalog (api/catalog_rules.py) and the answers every
guarded or body-taking operation may give from api/contract.py; what JSON
Schema cannot state is taught to the generator by tests/contract_hooks.py,
which the CLI loads too (SCHEMATHESIS_HOOKS).

Then one focused test per rule, so a regression names itself. The whole
module takes well under a minute (the examples are few and deterministic;
CONTRACT_EXAMPLES=100 for a deeper run by hand).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
import redis
import schemathesis
from schemathesis import engine
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events

import tests.contract_hooks  # noqa: F401 (registers the format, the CSV bodies and the rules)
from smsdispatch.api.app import create_app
from smsdispatch.config.catalog import load_catalog
from smsdispatch.config.settings import DEFAULT_CATALOG
from smsdispatch.local.serve import BackgroundServer
from smsdispatch.store.migrate import upgrade
from smsdispatch.vocabulary import keys
from tests.settings import make_settings
from tests.test_api_fuzz import KEY, METRICS_TOKEN, SECRET, LiveApi

EXAMPLES = int(os.environ.get("CONTRACT_EXAMPLES", "4"))
METHODS = ("get", "put", "post", "delete", "patch")


@pytest.fixture(scope="module")
def live_api(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> Iterator[tuple[LiveApi, dict[str, object]]]:
    """The API over HTTP with a campaign (with recipients) and a message; and its
    document. One server for the module, on SQLite: the contract is HTTP's, and
    tests/test_api_fuzz.py runs the API on both databases."""
    database_url = f"sqlite:///{tmp_path_factory.mktemp('contract') / 'results.db'}"
    upgrade(database_url)
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.set(keys.LIMITER_STATE, 0)  # as the redis_client fixture leaves it
    settings = make_settings(
        database_url=database_url,
        redis_url=redis_url,
        api_keys=[KEY],
        report_secret=SECRET,
        metrics_token=METRICS_TOKEN,
        # The hooks write callback URLs to a loopback receiver (contract_hooks.py);
        # an API_KEYS key signs them with CALLBACK_SECRET.
        callback_allow_private=True,
        callback_secret="contract-callback-secret-0123456789",
    )
    server = BackgroundServer(create_app(settings))
    server.start()
    try:
        with httpx.Client(base_url=server.root, headers={"X-API-Key": KEY}) as http:
            created = http.post(
                "/v1/campaigns", json={"name": "contract", "provider": "cue", "template": "Hi"}
            )
            assert created.status_code == 201, created.text
            campaign_id = int(created.json()["id"])
            uploaded = http.post(
                f"/v1/campaigns/{campaign_id}/recipients",
                content=b"phone\n+12125551001\n+12125551002\n",
                headers={"Content-Type": "text/csv"},
            )
            assert uploaded.status_code == 200, uploaded.text
            sent = http.post(
                "/v1/messages", json={"to": "+27821230001", "text": "hi", "provider": "cue"}
            )
            assert sent.status_code == 202, sent.text
            message_id = int(sent.json()["id"])
            reference = http.get(f"/v1/messages/{message_id}").json()["reference"]
            document = http.get("/openapi.json").json()
            yield LiveApi(server.root, campaign_id, message_id, reference), document
    finally:
        server.stop()
        client.flushdb()
        client.close()


@pytest.fixture
def api(live_api: tuple[LiveApi, dict[str, object]]) -> LiveApi:
    return live_api[0]


@pytest.fixture
def document(live_api: tuple[LiveApi, dict[str, object]]) -> dict[str, object]:
    return live_api[1]


def contract_config(api: LiveApi) -> SchemathesisConfig:
    """`schemathesis run --checks all` with a fixed seed, few examples, our key,
    and the fixture's ids for the path parameters (so operations reach their logic)."""
    return SchemathesisConfig.from_str(
        f"""
        seed = 20261202
        headers = {{ "X-API-Key" = "{KEY}" }}
        [checks]
        enabled = true
        [generation]
        max-examples = {EXAMPLES}
        deterministic = true
        [parameters]
        "path.campaign_id" = {api.campaign_id}
        "path.message_id" = {api.message_id}
        """
    )


def test_schemathesis_with_every_check_finds_no_failure_in_any_operation(api: LiveApi) -> None:
    schema = schemathesis.openapi.from_url(f"{api.root}/openapi.json", config=contract_config(api))
    failures: Counter[str] = Counter()
    tested: set[str] = set()
    errors: list[str] = []
    for event in engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            tested.add(event.recorder.label)
            for checks in event.recorder.checks.values():
                for check in checks:
                    if check.status is Status.FAILURE and check.failure_info is not None:
                        info = check.failure_info
                        what = f"{event.recorder.label}: {check.name}: {info.failure.title}"
                        failures[f"{what}\n  {info.failure.message}\n  {info.code_sample}"] += 1
        elif isinstance(event, events.NonFatalError | events.FatalError):
            errors.append(repr(event))
    assert not errors
    assert not failures, "\n".join(f"{n} x {what}" for what, n in sorted(failures.items()))
    operations = {
        f"{method.upper()} {path}"
        for path, item in schema.raw_schema["paths"].items()
        for method in item
        if method in METHODS
    }
    assert operations <= tested, sorted(operations - tested)


def operations(document: dict[str, object]) -> Iterator[tuple[str, str, dict[str, object]]]:
    paths = document["paths"]
    assert isinstance(paths, dict)
    for path, item in paths.items():
        for method, operation in item.items():
            if method in METHODS:
                yield method, path, operation


def test_a_401_is_documented_on_every_operation_behind_the_api_key(
    document: dict[str, object],
) -> None:
    guarded = [(m, p, op) for m, p, op in operations(document) if op.get("security")]
    assert len(guarded) > 10
    for method, path, operation in guarded:
        responses = operation["responses"]
        assert isinstance(responses, dict)
        assert "401" in responses, (method, path)
        schema = responses["401"]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/Error"}, (method, path)


def test_only_the_delivery_reports_are_outside_the_api_key(document: dict[str, object]) -> None:
    # They authenticate by their token: a vendor holds no API key.
    open_ = {(m, p) for m, p, op in operations(document) if not op.get("security")}
    assert open_ == {
        ("get", "/reports/{provider}/{token}"),
        ("post", "/reports/{provider}/{token}"),
    }


def test_a_guarded_operation_without_a_key_answers_its_documented_401(api: LiveApi) -> None:
    answer = httpx.get(f"{api.root}/v1/vendors")
    assert answer.status_code == 401
    assert answer.json() == {"detail": "a valid X-API-Key is required"}


def test_a_body_that_is_not_json_answers_a_documented_400(
    api: LiveApi, document: dict[str, object]
) -> None:
    answer = httpx.post(
        f"{api.root}/v1/messages",
        content=b"-\xff",
        headers={"X-API-Key": KEY, "Content-Type": "application/json"},
    )
    assert answer.status_code == 400
    assert set(answer.json()) == {"detail"}
    json_bodies = [
        (m, p, op)
        for m, p, op in operations(document)
        if "application/json" in op.get("requestBody", {}).get("content", {})  # type: ignore[attr-defined]
    ]
    assert json_bodies
    for method, path, operation in json_bodies:
        assert "400" in operation["responses"], (method, path)  # type: ignore[operator]


def test_an_unknown_provider_is_refused_by_the_schema_itself(
    document: dict[str, object],
) -> None:
    catalog = load_catalog(DEFAULT_CATALOG)
    schemas = document["components"]["schemas"]  # type: ignore[index]
    for name in ("OneMessageIn", "CampaignIn"):
        provider = schemas[name]["properties"]["provider"]
        enums = [s for s in provider["allOf"] if "anyOf" in s][-1]["anyOf"][0]["enum"]
        assert set(enums) == {*catalog.providers, "auto"}, name
        assert "" not in enums


def test_the_schema_says_which_sender_each_vendor_takes(document: dict[str, object]) -> None:
    catalog = load_catalog(DEFAULT_CATALOG)
    message = document["components"]["schemas"]["OneMessageIn"]  # type: ignore[index]
    branches = {
        b["properties"]["provider"]["const"]: b for b in message["anyOf"] if "const" in str(b)
    }
    for name in catalog.providers:
        senders = branches[name]["properties"]["sender"]["enum"]
        assert {s.id for s in catalog.get(name).senders} <= set(senders)
        assert branches[name]["properties"]["text"]["maxLength"] == catalog.get(name).max_text_chars


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("OPTIONS", "/reports/cue/anything", "GET, POST"),
        ("PUT", "/v1/messages/1", "GET"),
        ("GET", "/v1/messages/batch", "POST"),
        ("POST", "/v1/campaigns/1/preview", "GET"),
        ("DELETE", "/v1/messages", "GET, POST"),
    ],
)
def test_a_405_lists_every_method_of_the_path(
    api: LiveApi, method: str, path: str, allowed: str
) -> None:
    answer = httpx.request(method, api.root + path, headers={"X-API-Key": KEY})
    assert answer.status_code == 405
    assert answer.headers["Allow"] == allowed


def test_every_cursor_the_pattern_allows_is_accepted(api: LiveApi) -> None:
    for cursor in ("1", "42", "999999999999999999"):
        answer = httpx.get(
            f"{api.root}/v1/messages", params={"after": cursor}, headers={"X-API-Key": KEY}
        )
        assert answer.status_code == 200, (cursor, answer.text)
