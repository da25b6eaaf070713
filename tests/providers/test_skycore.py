"""Skycore: the contract, plus its header key, number format and sender mask."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from smsdispatch.config.catalog import Catalog
from smsdispatch.config.settings import Settings, SkycoreSettings
from smsdispatch.local.simulators import SimulatorServer
from smsdispatch.providers.skycore import SkycoreAdapter
from smsdispatch.simulators.common import Ceiling
from smsdispatch.vocabulary.message import OutboundMessage
from smsdispatch.vocabulary.outcomes import Outcome, OutcomeKind
from tests.providers.contract import AdapterContract, message, send
from tests.settings import TEST_CREDENTIALS, make_settings

MOCK_URL = "https://skycore.test/API/wxml/1.3/index.php"


class TestSkycoreContract(AdapterContract):
    vendor = "skycore"
    CODE_CASES = (
        ("E111", OutcomeKind.VENDOR_REFUSED),
        # Not documented: the HTTP-level codes our simulator carries as error-code.
        ("400", OutcomeKind.PERMANENT),
        ("401", OutcomeKind.ACCOUNT),
        ("403", OutcomeKind.ACCOUNT),
        ("429", OutcomeKind.RATE_LIMITED),
        ("500", OutcomeKind.RETRY),
        ("502", OutcomeKind.RETRY),
        ("503", OutcomeKind.RETRY),
        ("504", OutcomeKind.RETRY),
    )


def send_mocked(
    catalog: Catalog,
    handler: Callable[[httpx.Request], httpx.Response],
    messages: list[OutboundMessage],
    **update: Any,
) -> list[Outcome]:
    """Send through `httpx.MockTransport`, for what the simulator cannot show."""
    vendor_settings = make_settings().skycore.model_copy(update={"base_url": MOCK_URL, **update})

    async def go() -> list[Outcome]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            adapter = SkycoreAdapter(vendor_settings, client, catalog.get("skycore"))
            return await adapter.send(messages)

    return asyncio.run(go())


def capture(sent: list[httpx.Request]) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"status": "Success", "tracking-id": "T1"})

    return handler


def answer(status: int, body: dict[str, Any]) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body)

    return handler


def test_skycore_api_key_travels_in_the_x_api_key_header(catalog: Catalog) -> None:
    sent: list[httpx.Request] = []
    send_mocked(catalog, capture(sent), [message(sender="00000")])
    [request] = sent
    key = TEST_CREDENTIALS["skycore"]["api_key"]
    assert request.headers["x-api-key"] == key
    assert key not in str(request.url)
    assert key not in request.content.decode()


def test_skycore_posts_sendsms_to_the_endpoint_url_itself(catalog: Catalog) -> None:
    sent: list[httpx.Request] = []
    send_mocked(catalog, capture(sent), [message(sender="00000")])
    [request] = sent
    assert (request.method, str(request.url)) == ("POST", MOCK_URL)
    assert json.loads(request.content) == {
        "action": "sendsms",
        "message-text": "Your code is 12345",
        "to": "27821230001",
        "from": "00000",
    }


def test_skycore_recipient_reaches_the_vendor_without_plus(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    [outcome] = send(settings, catalog, "skycore", [message(to="+27821230001")])
    [received] = simulators["skycore"].state.received
    assert outcome.kind is OutcomeKind.ACCEPTED, outcome
    assert received.to == "27821230001"


def test_skycore_alphanumeric_sender_goes_as_mask_from_the_default_number(
    catalog: Catalog,
) -> None:
    sent: list[httpx.Request] = []
    send_mocked(catalog, capture(sent), [message(sender="Dunder")], default_sender="18885550100")
    body = json.loads(sent[0].content)
    assert (body["from"], body["from-mask"]) == ("18885550100", "Dunder")


def test_skycore_numeric_sender_goes_as_from_without_a_mask(catalog: Catalog) -> None:
    sent: list[httpx.Request] = []
    send_mocked(catalog, capture(sent), [message(sender="+18885550100")])
    body = json.loads(sent[0].content)
    assert body["from"] == "18885550100"
    assert "from-mask" not in body


def test_skycore_masked_message_is_counted_against_the_numeric_from(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    [outcome] = send(settings, catalog, "skycore", [message(sender="Dunder")])
    [received] = simulators["skycore"].state.received
    assert outcome.kind is OutcomeKind.ACCEPTED, outcome
    assert received.sender == settings.skycore.default_sender


def test_skycore_non_numeric_from_is_refused_as_permanent_e111(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    brand_default = settings.skycore.model_copy(update={"default_sender": "ACME"})
    misconfigured = settings.model_copy(update={"skycore": brand_default})
    [outcome] = send(misconfigured, catalog, "skycore", [message(sender="Dunder")])
    assert (outcome.kind, outcome.code, outcome.reason) == (
        OutcomeKind.VENDOR_REFUSED,
        "E111",
        "Invalid Sender.",
    )
    assert simulators["skycore"].state.received == []


def test_skycore_lowercase_failure_status_is_understood(catalog: Catalog) -> None:
    body = {"status": "failure", "error-code": "E111", "error-info": "Invalid Sender."}
    [outcome] = send_mocked(catalog, answer(200, body), [message(sender="00000")])
    assert (outcome.kind, outcome.code) == (OutcomeKind.VENDOR_REFUSED, "E111")


def test_skycore_undocumented_code_on_http_200_is_retried_with_the_vendor_words(
    catalog: Catalog,
) -> None:
    body = {"status": "Failure", "error-code": "E999", "error-info": "Insufficient balance."}
    [outcome] = send_mocked(catalog, answer(200, body), [message(sender="00000")])
    assert (outcome.kind, outcome.code, outcome.undocumented) == (OutcomeKind.RETRY, "E999", True)
    assert outcome.reason == "undocumented code E999: Insufficient balance."


def test_skycore_undocumented_code_on_a_plain_client_error_is_retried_not_failed(
    catalog: Catalog,
) -> None:
    body = {"status": "Failure", "error-code": "E120", "error-info": "Campaign check failed."}
    [outcome] = send_mocked(catalog, answer(409, body), [message(sender="00000")])
    assert (outcome.kind, outcome.code, outcome.undocumented) == (OutcomeKind.RETRY, "E120", True)


def test_skycore_undocumented_code_on_a_server_error_is_retried(catalog: Catalog) -> None:
    body = {"status": "Failure", "error-code": "E999", "error-info": "Try later."}
    [outcome] = send_mocked(catalog, answer(503, body), [message(sender="00000")])
    assert (outcome.kind, outcome.code, outcome.undocumented) == (OutcomeKind.RETRY, "E999", False)


def test_skycore_undocumented_code_on_a_refused_key_pauses_the_account(catalog: Catalog) -> None:
    body = {"status": "Failure", "error-code": "E401", "error-info": "Key disabled."}
    [outcome] = send_mocked(catalog, answer(403, body), [message(sender="00000")])
    assert (outcome.kind, outcome.code, outcome.undocumented) == (
        OutcomeKind.ACCOUNT,
        "E401",
        False,
    )


def test_skycore_failure_without_an_error_code_is_retried_as_undocumented(
    catalog: Catalog,
) -> None:
    [outcome] = send_mocked(catalog, answer(200, {"status": "Failure"}), [message(sender="00000")])
    assert (outcome.kind, outcome.undocumented) == (OutcomeKind.RETRY, True)
    assert outcome.reason == "undocumented answer: Failure without an error-code"


def test_skycore_code_classified_in_the_catalog_is_no_longer_undocumented(
    catalog: Catalog,
) -> None:
    entry = catalog.get("skycore").model_copy(
        update={"code_overrides": {"E112": OutcomeKind.PERMANENT}}
    )
    classified = catalog.model_copy(update={"providers": {**catalog.providers, "skycore": entry}})
    body = {"status": "Failure", "error-code": "E112", "error-info": "Invalid number."}
    [outcome] = send_mocked(classified, answer(200, body), [message(sender="00000")])
    assert (outcome.kind, outcome.undocumented) == (OutcomeKind.PERMANENT, False)


def test_skycore_outcomes_name_the_message_they_answer(catalog: Catalog) -> None:
    body = {"status": "Failure", "error-code": "E999", "error-info": "Insufficient balance."}
    outcomes = send_mocked(
        catalog, answer(200, body), [message(4, sender="00000"), message(9, sender="00000")]
    )
    assert [o.message_id for o in outcomes] == [4, 9]


# -- the endpoint: a setting with no default ----------------------------------


def test_skycore_has_no_invented_endpoint() -> None:
    assert SkycoreSettings().base_url == ""


def test_skycore_without_its_endpoint_sends_nothing_and_pauses_naming_the_setting(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    unset = settings.model_copy(
        update={"skycore": settings.skycore.model_copy(update={"base_url": ""})}
    )
    [outcome] = send(unset, catalog, "skycore", [message()])
    assert (outcome.kind, outcome.code) == (OutcomeKind.ACCOUNT, "configuration")
    assert outcome.reason == "SKYCORE__BASE_URL is not set"
    assert simulators["skycore"].state.requests == 0


def test_skycore_status_details_are_kept_as_vendor_status(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    [outcome] = send(settings, catalog, "skycore", [message()])
    assert outcome.vendor_status == "SMS request accepted and queued for delivery"
    assert f'"tracking-id":"{outcome.tracking_id}"' in str(outcome.raw)


def test_skycore_throttle_is_rate_limited_with_retry_after(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    simulators["skycore"].state.control.ceiling = Ceiling(count=1, per_seconds=60)
    outcomes = send(settings, catalog, "skycore", [message(1), message(2, to="+27821230002")])
    kinds = sorted(o.kind for o in outcomes)
    assert kinds == sorted([OutcomeKind.ACCEPTED, OutcomeKind.RATE_LIMITED])
    [limited] = [o for o in outcomes if o.kind is OutcomeKind.RATE_LIMITED]
    assert (limited.code, limited.retry_after) == ("429", 1.0)


@pytest.mark.parametrize(
    ("field", "value"),
    [("to", "+27821230001"), ("to", "0027821230001"), ("action", "sendmms")],
    ids=["to-with-plus", "to-with-00", "unknown-action"],
)
def test_skycore_simulator_refuses_a_malformed_request_with_400(
    field: str, value: str, settings: Settings, simulators: SimulatorServer
) -> None:
    response = post_to_simulator(settings, **{field: value})
    assert response.status_code == 400
    assert response.json()["status"] == "Failure"
    assert response.json()["error-code"] == "400"


def test_skycore_simulator_action_is_case_insensitive(
    settings: Settings, simulators: SimulatorServer
) -> None:
    response = post_to_simulator(settings, action="SendSMS")
    assert response.json()["status"] == "Success"


def test_skycore_simulator_refuses_a_missing_key_with_401(
    settings: Settings, simulators: SimulatorServer
) -> None:
    response = httpx.post(settings.skycore.base_url, json=request_body())
    assert response.status_code == 401
    assert response.json()["error-code"] == "401"


def request_body(**update: str) -> dict[str, str]:
    body = {"action": "sendsms", "message-text": "hi", "to": "27821230001", "from": "00000"}
    body.update(update)
    return body


def post_to_simulator(settings: Settings, **update: str) -> httpx.Response:
    skycore: SkycoreSettings = settings.skycore
    return httpx.post(
        skycore.base_url,
        json=request_body(**update),
        headers={"x-api-key": skycore.api_key.get_secret_value()},
    )
