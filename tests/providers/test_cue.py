"""Cue: the contract, plus duplicates, query credentials, reports, Unicode."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace

import httpx

from smsdispatch.config.catalog import Catalog
from smsdispatch.config.settings import Settings
from smsdispatch.local.simulators import SimulatorServer
from smsdispatch.providers.registry import build_adapter
from smsdispatch.simulators.cue import CueSimulator
from smsdispatch.vocabulary.message import OutboundMessage
from smsdispatch.vocabulary.outcomes import Outcome, OutcomeKind
from tests.providers.contract import AdapterContract, message, send
from tests.settings import TEST_CREDENTIALS

REPORT_URL = "https://hooks.example.test/cue?token=abc"
SENT = {"status": 1, "message": "Sent", "details": "8beda1a8-5c12-489f-0107-123000000003"}


class TestCueContract(AdapterContract):
    vendor = "cue"
    CODE_CASES = (
        ("1", OutcomeKind.ACCEPTED),
        ("2", OutcomeKind.ACCEPTED),
        ("-1", OutcomeKind.RETRY),
        ("-2", OutcomeKind.ACCOUNT),
        ("-3", OutcomeKind.ACCOUNT),
        ("-4", OutcomeKind.PERMANENT),
        ("-5", OutcomeKind.VENDOR_REFUSED),
        ("-6", OutcomeKind.PERMANENT),
        # On a first send; a resend's -7 is accepted (tests below).
        ("-7", OutcomeKind.RETRY),  # under a new reference: see the -7 tests below
        ("-8", OutcomeKind.PERMANENT),
        ("-9", OutcomeKind.PERMANENT),
        ("-10", OutcomeKind.ACCOUNT),
        ("-11", OutcomeKind.ACCOUNT),
        ("-12", OutcomeKind.PERMANENT),
        ("-13", OutcomeKind.ACCOUNT),
        ("-14", OutcomeKind.ACCOUNT),
        ("-15", OutcomeKind.ACCOUNT),
        ("-16", OutcomeKind.ACCOUNT),
    )


CUE_REFERENCE = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"


def cue_message(mid: int = 7, text: str = "Your code is 12345") -> OutboundMessage:
    return OutboundMessage(
        id=mid, reference=CUE_REFERENCE, recipient="+27821230001", sender="CUESMS", text=text
    )


def through_mock(
    settings: Settings,
    catalog: Catalog,
    handler: Callable[[httpx.Request], httpx.Response],
    *,
    report_url: str | None = None,
) -> Outcome:
    """Send one message through a client whose transport is `handler`."""

    async def go() -> list[Outcome]:
        transport = httpx.MockTransport(handler)
        async with httpx.AsyncClient(transport=transport) as client:
            adapter = build_adapter("cue", settings, client, catalog, report_url=report_url)
            return await adapter.send([cue_message()])

    [outcome] = asyncio.run(go())
    return outcome


def sent_request(
    settings: Settings, catalog: Catalog, *, report_url: str | None = None
) -> httpx.Request:
    """The request the adapter puts on the wire for `cue_message()`."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=SENT)

    through_mock(settings, catalog, handler, report_url=report_url)
    [request] = seen
    return request


def answering(
    status_code: int, *, json: object = None, text: str | None = None
) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        if text is not None:
            return httpx.Response(status_code, text=text)
        return httpx.Response(status_code, json=json)

    return handler


# -- duplicates --------------------------------------------------------------


def test_cue_duplicate_reference_after_an_unanswered_send_counts_as_accepted(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    sent = message(7)
    [first] = send(settings, catalog, "cue", [sent])
    [again] = send(settings, catalog, "cue", [replace(sent, reference_in_doubt=True)])
    assert first.kind is OutcomeKind.ACCEPTED
    assert (again.kind, again.code, again.vendor_status) == (
        OutcomeKind.ACCEPTED,
        "-7",
        "duplicate",
    )
    assert again.tracking_id is None
    assert [r.reference for r in simulators["cue"].state.received] == [sent.reference]


def test_cue_duplicate_reference_when_no_send_of_ours_went_unanswered_asks_for_a_new_one(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    theirs = message(7)
    send(settings, catalog, "cue", [theirs])
    # Our message under a reference Cue already knows, though every earlier
    # send of ours was answered: nothing of ours was taken under it.
    ours = replace(message(7, to="+27821230002"), reference=theirs.reference)
    [outcome] = send(settings, catalog, "cue", [ours])
    assert (outcome.kind, outcome.code, outcome.renew_reference) == (OutcomeKind.RETRY, "-7", True)
    assert "new reference" in (outcome.reason or "")
    assert [r.to for r in simulators["cue"].state.received] == ["27821230001"]


def test_cue_resend_after_read_timeout_is_accepted_once(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    simulators["cue"].state.control.hang_next = 1
    simulators["cue"].state.control.hang_seconds = 1.0
    sent = message(8)
    [timed_out] = send(settings, catalog, "cue", [sent], timeout=0.3)
    [resent] = send(settings, catalog, "cue", [replace(sent, reference_in_doubt=True)])
    assert timed_out.kind is OutcomeKind.RETRY
    assert (resent.kind, resent.code) == (OutcomeKind.ACCEPTED, "-7")
    assert simulators["cue"].stats().received == 1


# -- the request -------------------------------------------------------------


def test_cue_credentials_travel_as_query_params(settings: Settings, catalog: Catalog) -> None:
    request = sent_request(settings, catalog)
    assert request.url.params["username"] == TEST_CREDENTIALS["cue"]["username"]
    assert request.url.params["password"] == TEST_CREDENTIALS["cue"]["password"]
    assert "authorization" not in request.headers


def test_cue_request_carries_the_documented_message_fields(
    settings: Settings, catalog: Catalog
) -> None:
    request = sent_request(settings, catalog)
    assert (request.method, request.url.path) == ("GET", "/cue/json")
    assert dict(request.url.params) == {
        "action": "message_send",
        "to": "27821230001",
        "from": "CUESMS",
        "text": "Your code is 12345",
        "client_reference": CUE_REFERENCE,
        "username": TEST_CREDENTIALS["cue"]["username"],
        "password": TEST_CREDENTIALS["cue"]["password"],
    }


def test_cue_asks_for_no_report_without_report_url(settings: Settings, catalog: Catalog) -> None:
    params = sent_request(settings, catalog).url.params
    assert "report_url" not in params
    assert "report_mask" not in params


def test_cue_asks_for_final_reports_naming_our_reference_with_report_url(
    settings: Settings, catalog: Catalog
) -> None:
    params = sent_request(settings, catalog, report_url=REPORT_URL).url.params
    assert params["report_mask"] == "19"
    assert params["report_url"] == REPORT_URL + f"&message_id={CUE_REFERENCE}&status=%d"


def test_cue_report_url_comes_back_with_our_reference_and_the_status(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    sent = message(9)
    [outcome] = send(settings, catalog, "cue", [sent], report_url=REPORT_URL)
    assert outcome.tracking_id is not None
    sim = simulators["cue"]
    assert isinstance(sim, CueSimulator)
    assert sim.delivery_report_url(outcome.tracking_id, 1) == (
        REPORT_URL + f"&message_id={sent.reference}&status=1"
    )
    assert sim.delivery_report_url(outcome.tracking_id, 4) is None  # not in mask 19


def test_cue_unicode_text_is_sent_intact(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    text = "Ваш код: 12345 ✓ — 😀 & + % ?"
    [outcome] = send(settings, catalog, "cue", [message(10, text=text)])
    [received] = simulators["cue"].state.received
    assert outcome.kind is OutcomeKind.ACCEPTED
    assert received.text == text


# -- the simulator's validation, seen through the adapter ---------------------


def test_cue_text_over_the_limit_fails_as_too_long(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    [outcome] = send(settings, catalog, "cue", [message(text="x" * 919)])
    assert (outcome.kind, outcome.code) == (OutcomeKind.PERMANENT, "-8")
    assert simulators["cue"].state.received == []


def test_cue_invalid_destination_fails_the_message(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    [outcome] = send(settings, catalog, "cue", [message(to="+123")])
    assert (outcome.kind, outcome.code) == (OutcomeKind.PERMANENT, "-4")


def test_cue_simulator_rejects_a_report_mask_out_of_range(
    settings: Settings, simulators: SimulatorServer
) -> None:
    params = {
        "action": "message_send",
        **TEST_CREDENTIALS["cue"],
        "to": "27821230001",
        "from": "CUESMS",
        "text": "hi",
        "report_url": REPORT_URL,
        "report_mask": "32",
    }
    body = httpx.get(settings.cue.base_url + "/json", params=params).json()
    assert body["status"] == -15


def test_cue_simulator_rejects_an_unknown_action(
    settings: Settings, simulators: SimulatorServer
) -> None:
    params = {
        "action": "balance",
        **TEST_CREDENTIALS["cue"],
        "to": "27821230001",
        "from": "CUESMS",
        "text": "hi",
    }
    body = httpx.get(settings.cue.base_url + "/json", params=params).json()
    assert body["status"] == -13


# -- answers outside the documented shape --------------------------------------


def test_cue_status_given_as_text_is_read(settings: Settings, catalog: Catalog) -> None:
    handler = answering(200, json={"status": "2", "message": "Queued", "details": "T2"})
    outcome = through_mock(settings, catalog, handler)
    assert (outcome.kind, outcome.tracking_id, outcome.vendor_status) == (
        OutcomeKind.ACCEPTED,
        "T2",
        "Queued",
    )


def test_cue_unreadable_success_is_resent(settings: Settings, catalog: Catalog) -> None:
    outcome = through_mock(settings, catalog, answering(200, text="<html>gateway</html>"))
    assert (outcome.kind, outcome.code) == (OutcomeKind.RETRY, "ambiguous")


def test_cue_acceptance_on_an_http_error_is_classified_by_the_http_status(
    settings: Settings, catalog: Catalog
) -> None:
    outcome = through_mock(settings, catalog, answering(502, json=SENT))
    assert (outcome.kind, outcome.code) == (OutcomeKind.RETRY, "502")


def test_cue_undocumented_code_is_retried_and_marked_with_the_vendor_words(
    settings: Settings, catalog: Catalog
) -> None:
    handler = answering(200, json={"status": -99, "message": "New Thing", "details": ""})
    outcome = through_mock(settings, catalog, handler)
    assert (outcome.kind, outcome.code, outcome.undocumented) == (OutcomeKind.RETRY, "-99", True)
    assert outcome.reason == "undocumented code -99: New Thing"


def test_cue_error_reason_keeps_the_vendor_details(settings: Settings, catalog: Catalog) -> None:
    handler = answering(
        200, json={"status": -6, "message": "Invalid Parameter", "details": "text is empty"}
    )
    outcome = through_mock(settings, catalog, handler)
    assert outcome.reason == "Invalid Parameter: text is empty"
