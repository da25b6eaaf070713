"""Restcomm: the contract, plus basic auth, the SMS representation, failed
answers, StatusCallback, the status query and the search for lost sends."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import parse_qs

import httpx
import pytest
from pydantic import SecretStr

from smsdispatch.config.catalog import Catalog, ProviderEntry
from smsdispatch.config.settings import Settings
from smsdispatch.local.simulators import SimulatorServer
from smsdispatch.providers.restcomm import RestcommAdapter, VendorStatus
from smsdispatch.simulators.common import Ceiling
from smsdispatch.simulators.restcomm import RestcommSimulator
from smsdispatch.vocabulary.delivery import DeliveryReport
from smsdispatch.vocabulary.message import OutboundMessage, new_reference
from smsdispatch.vocabulary.outcomes import Outcome, OutcomeKind
from tests.providers.contract import AdapterContract, message, send
from tests.settings import TEST_CREDENTIALS, make_settings

K = OutcomeKind
SID = TEST_CREDENTIALS["restcomm"]["account_sid"]
TOKEN = TEST_CREDENTIALS["restcomm"]["auth_token"]
REPORT_URL = "https://dispatch.example.com/webhooks/restcomm"

# The document's example answer to a send, verbatim.
DOCUMENTED_ANSWER = (
    '{ "sid": "SM5dd70f7ea54e47f1a49749debeec3f7f", "date_created":"Thu, 19 Nov 2015 07:21:35'
    ' -0500", "date_updated":"Thu, 19 Nov 2015 07:21:35 -0500", "account_sid":"ACXXXXXXXXXXXX'
    'XXXXXXXXXXXXXXXXXXXXX", "from":"19876543212", "to":"13216549878", "body":"Test SMS", '
    '"status":"sending", "direction":"outbound-api", "api_version":"2012-04-24", "uri":"/api/'
    "2012-04-24/Accounts/ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX/SMS/Messages/SM5dd70f7ea54e47f1a4"
    '9749debeec3f7f.json" }'
)


class TestRestcommContract(AdapterContract):
    vendor = "restcomm"
    CODE_CASES: ClassVar[list[tuple[str, OutcomeKind]]] = [
        ("30001", K.RATE_LIMITED),
        ("30002", K.ACCOUNT),
        ("30003", K.PERMANENT),
        ("30004", K.PERMANENT),
        ("30005", K.PERMANENT),
        ("30006", K.PERMANENT),
        ("30007", K.PERMANENT),
        ("30008", K.RETRY),
        ("30009", K.RETRY),
        ("30010", K.VENDOR_REFUSED),
        ("30090", K.AMBIGUOUS),
    ]


# -- helpers ---------------------------------------------------------------------


def restcomm(simulators: SimulatorServer) -> RestcommSimulator:
    sim = simulators["restcomm"]
    assert isinstance(sim, RestcommSimulator)
    return sim


def outbound(mid: int = 1, to: str = "+27821230001") -> OutboundMessage:
    return OutboundMessage(
        id=mid,
        reference=new_reference(),
        recipient=to,
        sender="19876543212",
        text="Your code is 12345",
    )


def mock_send(
    handler: Callable[[httpx.Request], httpx.Response],
    catalog: Catalog,
    *,
    report_url: str | None = None,
) -> Outcome:
    """Send one message through an adapter whose vendor is `handler`."""

    async def go() -> Outcome:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            adapter = RestcommAdapter(
                make_settings().restcomm, client, catalog.get("restcomm"), report_url=report_url
            )
            [outcome] = await adapter.send([outbound()])
            return outcome

    return asyncio.run(go())


def answering(
    status: int,
    body: str,
    headers: dict[str, str] | None = None,
) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, text=body, headers=headers)

    return handler


def fetch(settings: Settings, catalog: Catalog, tracking_id: str) -> VendorStatus | Outcome:
    async def go() -> VendorStatus | Outcome:
        async with httpx.AsyncClient(timeout=5.0) as client:
            adapter = RestcommAdapter(settings.restcomm, client, catalog.get("restcomm"))
            return await adapter.fetch_status(tracking_id)

    return asyncio.run(go())


def with_restcomm(settings: Settings, **update: object) -> Settings:
    return settings.model_copy(update={"restcomm": settings.restcomm.model_copy(update=update)})


# -- sending ---------------------------------------------------------------------


def test_restcomm_sends_basic_auth_with_account_sid_and_token(catalog: Catalog) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text=DOCUMENTED_ANSWER)

    mock_send(handler, catalog)
    expected = base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert seen[0].headers["authorization"] == f"Basic {expected}"
    assert seen[0].url.path == f"/restcomm/2012-04-24/Accounts/{SID}/SMS/Messages.json"


def test_restcomm_simulator_refuses_a_path_sid_other_than_the_authenticated_account(
    settings: Settings, simulators: SimulatorServer
) -> None:
    url = f"{settings.restcomm.base_url}/Accounts/ACother/SMS/Messages.json"
    response = httpx.post(
        url, auth=(SID, TOKEN), data={"From": "19876543212", "To": "+27821230001", "Body": "hi"}
    )
    assert response.status_code == 401
    assert restcomm(simulators).state.received == []


def test_restcomm_wrong_account_sid_pauses_the_account(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    wrong = with_restcomm(settings, account_sid=SecretStr("ACwrong0000000000000000000000000000"))
    [outcome] = send(wrong, catalog, "restcomm", [message()])
    assert outcome.kind is K.ACCOUNT, outcome


def test_restcomm_documented_answer_yields_its_sid_as_tracking_id(catalog: Catalog) -> None:
    outcome = mock_send(answering(200, DOCUMENTED_ANSWER), catalog)
    assert outcome.kind is K.ACCEPTED
    assert outcome.tracking_id == "SM5dd70f7ea54e47f1a49749debeec3f7f"
    assert outcome.vendor_status == "sending"
    assert outcome.raw == DOCUMENTED_ANSWER


def test_restcomm_simulator_issues_fresh_sm_sids(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    outcomes = send(settings, catalog, "restcomm", [message(1), message(2)])
    sids = [o.tracking_id or "" for o in outcomes]
    assert all(s.startswith("SM") and len(s) == 34 for s in sids)
    assert sids[0] != sids[1]


def test_restcomm_recipient_is_sent_in_e164_with_plus(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    send(settings, catalog, "restcomm", [message(to="+27821230001")])
    [received] = restcomm(simulators).state.received
    assert received.to == "+27821230001"


def test_restcomm_failed_answer_is_classified_by_its_error_code(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    restcomm(simulators).state.control.fail_next = 1
    restcomm(simulators).state.control.fail_with = "failed:30005"
    [outcome] = send(settings, catalog, "restcomm", [message()])
    assert (outcome.kind, outcome.code) == (K.PERMANENT, "30005"), outcome
    assert outcome.reason == "Unknown destination handset"


def test_restcomm_failed_answer_keeps_the_sid_for_reconciliation(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    restcomm(simulators).state.control.fail_next = 1
    restcomm(simulators).state.control.fail_with = "failed:30090"
    [outcome] = send(settings, catalog, "restcomm", [message()])
    assert outcome.kind is K.AMBIGUOUS, outcome
    assert (outcome.tracking_id or "").startswith("SM")


def test_restcomm_failed_answer_without_error_code_is_retried(catalog: Catalog) -> None:
    body = json.dumps({"sid": "SM1", "status": "failed", "error_code": None})
    outcome = mock_send(answering(200, body), catalog)
    assert (outcome.kind, outcome.code) == (K.RETRY, "failed"), outcome


def test_restcomm_unknown_status_in_a_send_answer_is_ambiguous(catalog: Catalog) -> None:
    outcome = mock_send(answering(200, json.dumps({"sid": "SM1", "status": "weird"})), catalog)
    assert outcome.kind is K.AMBIGUOUS, outcome


def test_restcomm_unmapped_error_code_keeps_the_class_of_its_http_status(
    catalog: Catalog,
) -> None:
    body = json.dumps({"code": 12345, "message": "Service unavailable", "status": 503})
    outcome = mock_send(answering(503, body), catalog)
    assert (outcome.kind, outcome.code, outcome.undocumented) == (K.RETRY, "12345", False)


def test_restcomm_undocumented_error_code_on_a_client_error_is_retried_not_failed(
    catalog: Catalog,
) -> None:
    body = json.dumps({"code": 21606, "message": "Account balance too low", "status": 400})
    outcome = mock_send(answering(400, body), catalog)
    assert (outcome.kind, outcome.code, outcome.undocumented) == (K.RETRY, "21606", True)
    assert outcome.reason == "undocumented code 21606: Account balance too low"


def test_restcomm_failed_answer_with_an_undocumented_code_is_retried_not_failed(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    restcomm(simulators).state.control.fail_next = 1
    restcomm(simulators).state.control.fail_with = "failed:39999"
    [outcome] = send(settings, catalog, "restcomm", [message()])
    assert (outcome.kind, outcome.code, outcome.undocumented) == (K.RETRY, "39999", True)


def test_restcomm_queue_overflow_honours_retry_after(catalog: Catalog) -> None:
    body = json.dumps({"code": 30001, "message": "Queue overflow", "status": 429})
    outcome = mock_send(answering(429, body, {"Retry-After": "7"}), catalog)
    assert (outcome.kind, outcome.code, outcome.retry_after) == (K.RATE_LIMITED, "30001", 7.0)


def test_restcomm_missing_messages_resource_pauses_the_account(catalog: Catalog) -> None:
    outcome = mock_send(answering(404, "Not Found"), catalog)
    assert outcome.kind is K.ACCOUNT, outcome


def test_restcomm_redirect_pauses_the_account_naming_the_base_url(catalog: Catalog) -> None:
    outcome = mock_send(answering(301, "", {"Location": "https://elsewhere/"}), catalog)
    assert outcome.kind is K.ACCOUNT, outcome
    assert outcome.reason is not None
    assert "base URL" in outcome.reason


def test_restcomm_missing_body_is_permanent(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    [outcome] = send(settings, catalog, "restcomm", [message(text="")])
    assert (outcome.kind, outcome.code) == (K.PERMANENT, "400"), outcome
    assert outcome.reason == "Body is required"


def test_restcomm_invalid_destination_is_permanent(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    [outcome] = send(settings, catalog, "restcomm", [message(to="+0821230001")])
    assert outcome.kind is K.PERMANENT, outcome
    assert restcomm(simulators).state.received == []


def test_restcomm_ceiling_answers_queue_overflow(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    restcomm(simulators).state.control.ceiling = Ceiling(count=1, per_seconds=60)
    outcomes = send(settings, catalog, "restcomm", [message(1), message(2)])
    assert sorted((o.kind, o.code or "") for o in outcomes) == [
        (K.ACCEPTED, ""),
        (K.RATE_LIMITED, "30001"),
    ]


# -- delivery reports ------------------------------------------------------------


def test_restcomm_status_callback_is_sent_when_report_url_is_set(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    [outcome] = send(settings, catalog, "restcomm", [message()], report_url=REPORT_URL)
    assert restcomm(simulators).messages[outcome.tracking_id or ""].status_callback == REPORT_URL


def test_restcomm_no_status_callback_without_report_url(catalog: Catalog) -> None:
    forms: list[dict[str, list[str]]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        forms.append(parse_qs(request.content.decode()))
        return httpx.Response(200, text=DOCUMENTED_ANSWER)

    mock_send(handler, catalog)
    assert sorted(forms[0]) == ["Body", "From", "To"]


# -- status query ----------------------------------------------------------------


def test_restcomm_fetch_status_returns_the_status_of_an_accepted_message(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    [outcome] = send(settings, catalog, "restcomm", [message()])
    status = fetch(settings, catalog, outcome.tracking_id or "")
    assert isinstance(status, VendorStatus), status
    assert (status.found, status.status, status.error_code) == (True, "sent", None)


def test_restcomm_fetch_status_reports_the_error_code_of_an_undelivered_message(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    [outcome] = send(settings, catalog, "restcomm", [message()])
    sid = outcome.tracking_id or ""
    restcomm(simulators).set_status(sid, "undelivered", 30003, "Unreachable destination handset")
    status = fetch(settings, catalog, sid)
    assert isinstance(status, VendorStatus), status
    assert (status.status, status.error_code, status.error_message) == (
        "undelivered",
        "30003",
        "Unreachable destination handset",
    )


def test_restcomm_status_query_report_carries_restcomms_own_time_of_delivery(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    [outcome] = send(settings, catalog, "restcomm", [message()])
    sid = outcome.tracking_id or ""
    restcomm(simulators).set_status(sid, "delivered")
    delivered_at = datetime.fromtimestamp(restcomm(simulators).messages[sid].updated, UTC)

    async def go() -> DeliveryReport | Outcome:
        async with httpx.AsyncClient(timeout=5.0) as client:
            adapter = RestcommAdapter(settings.restcomm, client, catalog.get("restcomm"))
            return await adapter.query_status(sid)

    report = asyncio.run(go())
    assert isinstance(report, DeliveryReport), report
    assert report.vendor_at is not None
    # date_updated is RFC 2822: whole seconds.
    assert report.vendor_at == delivered_at.replace(microsecond=0)


def test_restcomm_fetch_status_of_an_unknown_sid_is_not_found(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    status = fetch(settings, catalog, "SM00000000000000000000000000000000")
    assert isinstance(status, VendorStatus), status
    assert (status.found, status.status) == (False, None)


def test_restcomm_fetch_status_with_wrong_token_is_account(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    wrong = with_restcomm(settings, auth_token=SecretStr("wrong"))
    outcome = fetch(wrong, catalog, "SM00000000000000000000000000000000")
    assert isinstance(outcome, Outcome), outcome
    assert outcome.kind is K.ACCOUNT, outcome


def test_restcomm_simulator_lists_messages_filtered_by_recipient(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    send(
        settings,
        catalog,
        "restcomm",
        [message(1, to="+27821230001"), message(2, to="+27821230002")],
    )
    url = f"{settings.restcomm.base_url}/Accounts/{SID}/SMS/Messages.json"
    page = httpx.get(url, auth=(SID, TOKEN), params={"To": "+27821230002"}).json()
    assert page["total"] == 1
    assert [m["to"] for m in page["messages"]] == ["+27821230002"]


# -- looking for a send whose answer was lost ------------------------------------

# The search window (claim to giving up): the adapter takes it as given.
SINCE = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
UNTIL = SINCE + timedelta(minutes=1)
MEMBER = "19876543213"  # a second long code, in pool "alerts" with 19876543212


def pooled(catalog: Catalog) -> ProviderEntry:
    """Restcomm's catalog entry with a pool "alerts" of two long codes."""
    data = catalog.get("restcomm").model_dump()
    data["senders"] = [*data["senders"], {"id": MEMBER, "kind": "long_code"}]
    data["pools"] = {"alerts": ("19876543212", MEMBER)}
    return ProviderEntry.model_validate(data)


def listed_item(**fields: object) -> dict[str, Any]:
    """One item of a list answer: by default `outbound()` as Restcomm lists it."""
    return {
        "sid": "SM1",
        "date_created": "Sun, 22 Nov 2026 12:00:30 +0000",
        "from": "19876543212",
        "to": "+27821230001",
        "body": "Your code is 12345",
        "status": "sent",
        "direction": "outbound-api",
        **fields,
    }


class ListAnswer:
    """A Restcomm that answers every list query with `items`; it keeps the queries."""

    def __init__(self, *items: object, **page: object) -> None:
        self.body = {
            "page": 0,
            "page_size": 50,
            "total": len(items),
            "previous_page_uri": "null",
            "next_page_uri": "null",
            "messages": list(items),
            **page,
        }
        self.queries: list[dict[str, list[str]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.queries.append(parse_qs(request.url.query.decode()))
        return httpx.Response(200, json=self.body)


def search(
    vendor: Callable[[httpx.Request], httpx.Response],
    entry: ProviderEntry,
    lost: OutboundMessage,
) -> list[DeliveryReport] | Outcome:
    """`find_sent` in the window SINCE..UNTIL, against a mocked Restcomm."""

    async def go() -> list[DeliveryReport] | Outcome:
        async with httpx.AsyncClient(transport=httpx.MockTransport(vendor)) as client:
            adapter = RestcommAdapter(make_settings().restcomm, client, entry)
            return await adapter.find_sent(lost, SINCE, UNTIL)

    return asyncio.run(go())


def search_simulator(
    settings: Settings, entry: ProviderEntry, lost: OutboundMessage, around: datetime
) -> list[DeliveryReport] | Outcome:
    """`find_sent` against the simulator, in a window of 5 s either side of `around`."""

    async def go() -> list[DeliveryReport] | Outcome:
        async with httpx.AsyncClient(timeout=5.0) as client:
            adapter = RestcommAdapter(settings.restcomm, client, entry)
            slack = timedelta(seconds=5)
            return await adapter.find_sent(lost, around - slack, around + slack)

    return asyncio.run(go())


def assert_uncertain(found: list[DeliveryReport] | Outcome) -> None:
    assert isinstance(found, Outcome), found
    assert (found.kind, found.code) == (K.RETRY, "uncertain"), found


def test_restcomm_search_finds_the_listed_message_with_our_text_in_the_window(
    catalog: Catalog,
) -> None:
    vendor = ListAnswer(listed_item())
    found = search(vendor, catalog.get("restcomm"), outbound())
    assert isinstance(found, list), found
    assert [(r.tracking_id, r.vendor_status) for r in found] == [("SM1", "sent")]
    [query] = vendor.queries
    assert (query["To"], query["From"]) == (["+27821230001"], ["19876543212"])


def test_restcomm_search_of_a_complete_list_without_our_message_finds_nothing(
    catalog: Catalog,
) -> None:
    assert search(ListAnswer(), catalog.get("restcomm"), outbound()) == []


def test_restcomm_search_filters_by_the_recipient_as_sent_and_knows_it_without_plus(
    catalog: Catalog,
) -> None:
    vendor = ListAnswer(listed_item(to="27821230001"))
    found = search(vendor, catalog.get("restcomm"), outbound())
    assert isinstance(found, list), found
    assert [r.tracking_id for r in found] == ["SM1"]
    assert vendor.queries[0]["To"] == ["+27821230001"]


def test_restcomm_search_for_a_pool_asks_by_recipient_alone_and_knows_each_member(
    catalog: Catalog,
) -> None:
    vendor = ListAnswer(
        listed_item(sid="SM1", **{"from": "55555"}),  # not in the pool: another message
        listed_item(sid="SM2", **{"from": MEMBER}),
    )
    found = search(vendor, pooled(catalog), replace(outbound(), sender="pool:alerts"))
    assert isinstance(found, list), found
    assert [r.tracking_id for r in found] == ["SM2"]
    assert "From" not in vendor.queries[0]


def test_restcomm_search_for_a_pool_the_catalog_lacks_is_uncertain_and_asks_nothing(
    catalog: Catalog,
) -> None:
    vendor = ListAnswer()
    assert_uncertain(search(vendor, pooled(catalog), replace(outbound(), sender="pool:gone")))
    assert vendor.queries == []


@pytest.mark.parametrize(
    "unclear",
    [
        {"status": "received"},
        {"status": "on its way"},
        {"status": None},
        {"date_created": "2026-11-22T12:00:30Z"},
        {"date_created": None},
        {"sid": None},
        {"to": None},
        {"from": None},
        {"body": None},
    ],
    ids=lambda fields: next(f"{k}={v}" for k, v in fields.items()),
)
def test_restcomm_search_is_uncertain_about_an_item_like_ours_it_cannot_judge(
    catalog: Catalog, unclear: dict[str, object]
) -> None:
    found = search(ListAnswer(listed_item(**unclear)), catalog.get("restcomm"), outbound())
    assert_uncertain(found)


@pytest.mark.parametrize(
    "other",
    [
        {"body": "Your code is 99999"},
        {"to": "+27821230002"},
        {"from": "55555"},
        {"date_created": "Sun, 22 Nov 2026 11:58:00 +0000"},
        {"date_created": "Sun, 22 Nov 2026 12:02:00 +0000"},
    ],
    ids=lambda fields: next(f"{k}={v}" for k, v in fields.items()),
)
def test_restcomm_search_leaves_out_an_item_that_is_plainly_another_message(
    catalog: Catalog, other: dict[str, object]
) -> None:
    unreadable_status = {"status": "on its way"}  # not judged: it is not ours anyway
    found = search(
        ListAnswer(listed_item(**other, **unreadable_status), listed_item(sid="SM2")),
        catalog.get("restcomm"),
        outbound(),
    )
    assert isinstance(found, list), found
    assert [r.tracking_id for r in found] == ["SM2"]


@pytest.mark.parametrize(
    "answer",
    [
        ListAnswer(listed_item(), total=2),
        ListAnswer(listed_item(), next_page_uri="/2012-04-24/Accounts/AC1/SMS/Messages?Page=1"),
        ListAnswer(listed_item(), page_size=1),
        ListAnswer(*[listed_item(body=f"other {i}") for i in range(50)]),
        ListAnswer(*[listed_item(body=f"other {i}") for i in range(50)], total=None),
    ],
    ids=["total", "next_page_uri", "capped_page_size", "full_page", "full_page_no_total"],
)
def test_restcomm_search_of_a_list_longer_than_its_page_is_uncertain(
    catalog: Catalog, answer: ListAnswer
) -> None:
    assert_uncertain(search(answer, catalog.get("restcomm"), outbound()))


@pytest.mark.parametrize("without_plus", [False, True], ids=["as_sent", "without_plus"])
def test_restcomm_search_finds_a_lost_send_from_a_pool_member_at_the_simulator(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer, without_plus: bool
) -> None:
    sim = restcomm(simulators)
    sim.state.control.numbers_without_plus = without_plus
    # The dead worker's send went from a member; another sender sent the same text.
    [sent, _] = send(
        settings,
        catalog,
        "restcomm",
        [message(1, sender=MEMBER), message(2, sender="55555")],
    )
    at = datetime.fromtimestamp(sim.state.received[0].at, UTC)
    found = search_simulator(settings, pooled(catalog), message(1, sender="pool:alerts"), at)
    assert isinstance(found, list), found
    assert [r.tracking_id for r in found] == [sent.tracking_id]
