"""SMSBuddy: the contract, plus its bulk endpoint, ceiling, balance and reports."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, TypeVar
from urllib.parse import parse_qs

import httpx
import pytest
from pydantic import SecretStr

from smsdispatch.config.catalog import Catalog
from smsdispatch.config.settings import Settings
from smsdispatch.local.simulators import SimulatorServer
from smsdispatch.providers.errors import ConfigurationError
from smsdispatch.providers.smsbuddy import NOT_ACCEPTED, SMSBuddyAdapter
from smsdispatch.simulators.common import Ceiling
from smsdispatch.simulators.smsbuddy import SMSBuddySimulator
from smsdispatch.vocabulary.outcomes import OutcomeKind
from tests.providers.contract import AdapterContract, message, send
from tests.settings import TEST_CREDENTIALS, make_settings

T = TypeVar("T")
REPORT_URL = "https://dispatch.example.com/reports/smsbuddy"


class TestSMSBuddyContract(AdapterContract):
    vendor = "smsbuddy"
    CODE_CASES: ClassVar[list[tuple[str, OutcomeKind]]] = [
        ("400", OutcomeKind.PERMANENT),
        ("422", OutcomeKind.ACCOUNT),
        ("401", OutcomeKind.ACCOUNT),
        ("412", OutcomeKind.VENDOR_REFUSED),
        ("451", OutcomeKind.OUTSIDE_HOURS),
        ("406", OutcomeKind.PERMANENT),
        ("416", OutcomeKind.RETRY),
        ("409", OutcomeKind.ACCOUNT),
        ("429", OutcomeKind.RATE_LIMITED),
        ("500", OutcomeKind.RETRY),
    ]


def sim(simulators: SimulatorServer) -> SMSBuddySimulator:
    simulator = simulators["smsbuddy"]
    assert isinstance(simulator, SMSBuddySimulator)
    return simulator


def with_adapter(
    settings: Settings,
    catalog: Catalog,
    use: Callable[[SMSBuddyAdapter], Awaitable[T]],
    handler: Callable[[httpx.Request], httpx.Response] | None = None,
) -> T:
    """Run `use` with an adapter on a fresh client (mocked when `handler` is given)."""

    async def go() -> T:
        transport = httpx.MockTransport(handler) if handler else None
        async with httpx.AsyncClient(transport=transport, timeout=5.0) as client:
            adapter = SMSBuddyAdapter(settings.smsbuddy, client, catalog.get("smsbuddy"))
            return await use(adapter)

    return asyncio.run(go())


def bulk(count: int, *, first_id: int = 1) -> list[Any]:
    return [message(first_id + i, to=f"+2782123{first_id + i:04d}") for i in range(count)]


# -- bulk -------------------------------------------------------------------


def test_smsbuddy_bulk_is_one_request_and_each_message_gets_the_id_matched_by_refid(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    messages = bulk(5)
    outcomes = send(settings, catalog, "smsbuddy", messages)
    received = {r.reference: r for r in sim(simulators).state.received}
    assert sim(simulators).state.requests == 1
    assert all(r.batch for r in received.values())
    assert [o.tracking_id for o in outcomes] == [
        received[m.reference].tracking_id for m in messages
    ]


def test_smsbuddy_bulk_answer_is_matched_by_refid_not_by_position(
    catalog: Catalog,
) -> None:
    def vendor(request: httpx.Request) -> httpx.Response:
        nodes = json.loads(request.content)["nodes"]
        data = [
            {
                "id": f"id-{n['to']}",
                "mobile": n["to"],
                "status": "AWAITING-DLR",
                "refid": n["refid"],
            }
            for n in reversed(nodes)
        ]
        return httpx.Response(200, json={"status": "200", "data": data})

    messages = bulk(3, first_id=40)
    outcomes = with_adapter(make_settings(), catalog, lambda a: a.send(messages), vendor)
    assert [o.tracking_id for o in outcomes] == [f"id-{m.recipient_digits}" for m in messages]
    assert {o.vendor_status for o in outcomes} == {"AWAITING-DLR"}


def test_smsbuddy_bulk_record_without_refid_leaves_the_batch_ambiguous(
    catalog: Catalog,
) -> None:
    def vendor(request: httpx.Request) -> httpx.Response:
        nodes = json.loads(request.content)["nodes"]
        data = [
            {"id": f"id-{i}", "status": "AWAITING-DLR", "refid": ""} for i, _ in enumerate(nodes)
        ]
        return httpx.Response(200, json={"status": "200", "data": data})

    outcomes = with_adapter(make_settings(), catalog, lambda a: a.send(bulk(2)), vendor)
    assert [o.kind for o in outcomes] == [OutcomeKind.AMBIGUOUS] * 2


def test_smsbuddy_invalid_number_in_a_bulk_fails_only_that_message(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    messages = [*bulk(2), message(3, to="+12345"), *bulk(1, first_id=4)]
    outcomes = send(settings, catalog, "smsbuddy", messages)
    accepted = [messages[i].reference for i in (0, 1, 3)]
    assert [o.kind for o in outcomes] == [
        OutcomeKind.ACCEPTED,
        OutcomeKind.ACCEPTED,
        OutcomeKind.PERMANENT,
        OutcomeKind.ACCEPTED,
    ]
    assert outcomes[2].code == NOT_ACCEPTED
    assert sorted(r.reference or "" for r in sim(simulators).state.received) == sorted(accepted)


def test_smsbuddy_bulk_without_any_valid_number_is_refused_with_406(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    outcomes = send(settings, catalog, "smsbuddy", [message(1, to="+123"), message(2, to="+45")])
    assert [(o.code, o.kind) for o in outcomes] == [("406", OutcomeKind.PERMANENT)] * 2
    assert sim(simulators).state.received == []


# -- our reference ----------------------------------------------------------


def test_smsbuddy_single_send_carries_our_reference_as_custom(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    sent = message(7)
    send(settings, catalog, "smsbuddy", [sent])
    [received] = sim(simulators).state.received
    assert (received.reference, received.batch) == (sent.reference, False)


def test_smsbuddy_bulk_carries_our_references_as_refid(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    messages = bulk(3, first_id=20)
    send(settings, catalog, "smsbuddy", messages)
    assert sorted(r.reference or "" for r in sim(simulators).state.received) == sorted(
        m.reference for m in messages
    )


# -- the ceiling ------------------------------------------------------------


def test_smsbuddy_simulator_enforces_the_documented_ceiling_by_default(
    simulators: SimulatorServer,
) -> None:
    assert sim(simulators).state.control.ceiling == Ceiling(count=1000, per_seconds=60)


def test_smsbuddy_over_the_ceiling_is_rate_limited_and_nothing_over_it_is_recorded(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    sim(simulators).state.control.ceiling = Ceiling(count=3, per_seconds=60)
    first = send(settings, catalog, "smsbuddy", bulk(3))
    over = send(settings, catalog, "smsbuddy", bulk(2, first_id=4))
    assert [o.kind for o in first] == [OutcomeKind.ACCEPTED] * 3
    assert [(o.code, o.kind) for o in over] == [("429", OutcomeKind.RATE_LIMITED)] * 2
    assert "1000 SMS/minute" in (over[0].reason or "")
    assert len(sim(simulators).state.received) == 3


# -- delivery reports -------------------------------------------------------


@pytest.mark.parametrize("count", [1, 3], ids=["single", "bulk"])
def test_smsbuddy_dlr_url_is_sent_when_report_url_is_set(
    count: int, settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    outcomes = send(settings, catalog, "smsbuddy", bulk(count), report_url=REPORT_URL)
    reports = sim(simulators).reports
    assert {o.tracking_id for o in outcomes} == set(reports)
    assert {r.dlr_url for r in reports.values()} == {REPORT_URL}


@pytest.mark.parametrize("count", [1, 3], ids=["single", "bulk"])
def test_smsbuddy_no_dlr_url_without_report_url(
    count: int, settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    outcomes = send(settings, catalog, "smsbuddy", bulk(count))
    assert [o.kind for o in outcomes] == [OutcomeKind.ACCEPTED] * count
    assert sim(simulators).reports == {}


# -- answers ----------------------------------------------------------------


def test_smsbuddy_error_code_is_read_from_the_body_not_the_http_status(
    catalog: Catalog,
) -> None:
    def vendor(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"status": "409", "message": "Insufficient Balance"})

    [outcome] = with_adapter(make_settings(), catalog, lambda a: a.send([message()]), vendor)
    assert (outcome.code, outcome.kind, outcome.reason) == (
        "409",
        OutcomeKind.ACCOUNT,
        "Insufficient Balance",
    )


@pytest.mark.parametrize("http_status", [200, 418])
def test_smsbuddy_undocumented_code_is_retried_not_failed(
    http_status: int, catalog: Catalog
) -> None:
    def vendor(request: httpx.Request) -> httpx.Response:
        return httpx.Response(http_status, json={"status": "417", "message": "Account expired"})

    [outcome] = with_adapter(make_settings(), catalog, lambda a: a.send([message()]), vendor)
    assert (outcome.kind, outcome.code, outcome.undocumented) == (OutcomeKind.RETRY, "417", True)
    assert outcome.reason == "undocumented code 417: Account expired"


def test_smsbuddy_undocumented_code_on_payment_required_pauses_the_account(
    catalog: Catalog,
) -> None:
    def vendor(request: httpx.Request) -> httpx.Response:
        return httpx.Response(402, json={"status": "402", "message": "Recharge your account"})

    [outcome] = with_adapter(make_settings(), catalog, lambda a: a.send([message()]), vendor)
    assert (outcome.kind, outcome.code) == (OutcomeKind.ACCOUNT, "402")


def test_smsbuddy_template_id_is_sent_when_configured(catalog: Catalog) -> None:
    forms: list[dict[str, list[str]]] = []

    def vendor(request: httpx.Request) -> httpx.Response:
        forms.append(parse_qs(request.content.decode()))
        return httpx.Response(200, json={"status": "200", "data": [{"id": "x-1"}]})

    settings = make_settings(
        smsbuddy={**TEST_CREDENTIALS["smsbuddy"], "template_id": "1234567890123456789"}
    )
    with_adapter(settings, catalog, lambda a: a.send([message()]), vendor)
    assert forms[0]["template_id"] == ["1234567890123456789"]


# -- balance ----------------------------------------------------------------


def test_smsbuddy_balance_check_returns_the_simulators_balance(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    sim(simulators).balance = {"trans": 4200, "promo": 7, "transscrub": 0}
    balance = with_adapter(settings, catalog, lambda a: a.balance())
    assert balance == {"trans": 4200, "promo": 7, "transscrub": 0}


def test_smsbuddy_balance_check_asks_at_the_documents_path_without_v1(
    catalog: Catalog,
) -> None:
    urls: list[str] = []

    def vendor(request: httpx.Request) -> httpx.Response:
        urls.append(str(request.url))
        return httpx.Response(200, json={"status": "200", "data": {"trans": 1}})

    with_adapter(make_settings(), catalog, lambda a: a.balance(), vendor)
    assert urls == ["https://thesmsbuddy.com/api/sms/balance/check"]


def test_smsbuddy_simulator_serves_the_balance_check_only_at_the_documents_path(
    simulators: SimulatorServer,
) -> None:
    form = {"key": TEST_CREDENTIALS["smsbuddy"]["key"]}
    response = httpx.post(f"{simulators.root}/smsbuddy/api/v1/sms/balance/check", data=form)
    assert response.status_code == 404


def test_smsbuddy_balance_check_with_a_wrong_key_is_a_configuration_error(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    wrong = settings.model_copy(
        update={"smsbuddy": settings.smsbuddy.model_copy(update={"key": SecretStr("wrong")})}
    )
    with pytest.raises(ConfigurationError, match="401"):
        with_adapter(wrong, catalog, lambda a: a.balance())


# -- the simulator's documented extras ----------------------------------------


def test_smsbuddy_simulator_records_one_message_per_comma_separated_number(
    simulators: SimulatorServer,
) -> None:
    form = {
        "key": TEST_CREDENTIALS["smsbuddy"]["key"],
        "type": "1",
        "sender": "SMSBDY",
        "to": "27821230001,27821230002",
        "message": "hello",
    }
    response = httpx.post(f"{simulators.root}/smsbuddy/api/v1/sms/send", data=form)
    body = response.json()
    assert (body["status"], body["message"]) == ("200", "2 numbers accepted for delivery.")
    assert [r.to for r in sim(simulators).state.received] == ["27821230001", "27821230002"]


def test_smsbuddy_simulator_serves_the_unversioned_paths_of_the_curl_examples(
    simulators: SimulatorServer,
) -> None:
    form = {"key": TEST_CREDENTIALS["smsbuddy"]["key"]}
    response = httpx.post(f"{simulators.root}/smsbuddy/api/sms/balance/check", data=form)
    assert response.json() == {
        "status": "200",
        "data": {"trans": 100, "promo": 0, "transscrub": 50},
    }
