"""Messangi: the contract, plus the batch endpoint and the document's own rules."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import httpx
import pytest

from smsdispatch.config.catalog import Catalog
from smsdispatch.config.settings import Settings
from smsdispatch.local.simulators import SimulatorServer
from smsdispatch.providers.messangi import MessangiAdapter
from smsdispatch.providers.registry import build_adapter
from smsdispatch.providers.reports import our_reference
from smsdispatch.simulators.common import Ceiling
from smsdispatch.vocabulary.message import OutboundMessage, new_reference
from smsdispatch.vocabulary.outcomes import Outcome, OutcomeKind
from tests.providers.contract import AdapterContract, closed_port_url, message, send

SEGMENTS_EXCEEDED = "Text exceeds the limit of allowed segments"
REPORT_URL = "https://hooks.example.com/messangi"


class TestMessangiContract(AdapterContract):
    vendor = "messangi"
    CODE_CASES = (
        ("ERROR", OutcomeKind.PERMANENT),
        ("400", OutcomeKind.PERMANENT),
        ("401", OutcomeKind.ACCOUNT),
        ("403", OutcomeKind.ACCOUNT),
        ("404", OutcomeKind.ACCOUNT),
        ("422", OutcomeKind.PERMANENT),
        ("429", OutcomeKind.RATE_LIMITED),
        ("500", OutcomeKind.RETRY),
        ("502", OutcomeKind.RETRY),
        ("503", OutcomeKind.RETRY),
        ("504", OutcomeKind.RETRY),
    )


def sent(
    settings: Settings, catalog: Catalog, messages: Sequence[OutboundMessage], **kwargs: Any
) -> list[Outcome]:
    return send(settings, catalog, "messangi", messages, **kwargs)


def built_body(
    settings: Settings,
    catalog: Catalog,
    messages: Sequence[OutboundMessage],
    *,
    report_url: str | None = None,
) -> dict[str, Any]:
    """The JSON body the adapter would send for these messages."""

    async def go() -> httpx.Request:
        async with httpx.AsyncClient() as client:
            adapter = build_adapter("messangi", settings, client, catalog, report_url=report_url)
            if len(messages) == 1:
                return adapter.build_request(messages[0])
            return adapter.build_batch_request(messages)

    body: dict[str, Any] = json.loads(asyncio.run(go()).content)
    return body


def mocked(
    settings: Settings,
    catalog: Catalog,
    messages: Sequence[OutboundMessage],
    handler: Callable[[httpx.Request], httpx.Response],
) -> list[Outcome]:
    """Send through a transport that answers with `handler`."""

    async def go() -> list[Outcome]:
        transport = httpx.MockTransport(handler)
        async with httpx.AsyncClient(transport=transport) as client:
            adapter = build_adapter("messangi", settings, client, catalog)
            return await adapter.send(messages)

    return asyncio.run(go())


def from_default(*messages: OutboundMessage) -> list[OutboundMessage]:
    return [replace(m, sender="12345") for m in messages]


# -- single sends -------------------------------------------------------------


def test_single_send_carries_our_reference_as_external_id(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    ours = message(4242)
    [outcome] = sent(settings, catalog, [ours])
    [received] = simulators["messangi"].state.received
    assert outcome.kind is OutcomeKind.ACCEPTED
    assert received.reference == ours.reference


def test_single_send_is_accepted_with_the_vendor_status_word(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    [outcome] = sent(settings, catalog, [message()])
    assert outcome.vendor_status == "QUEUE"


@pytest.mark.parametrize("word", ["DEQUEUED", "ACCEPTD", "ENROUTE", "SENT"])
def test_in_flight_status_words_count_as_accepted(
    word: str, settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    simulators["messangi"].state.control.fail_next = 1
    simulators["messangi"].state.control.fail_with = word
    [outcome] = sent(settings, catalog, [message()])
    assert (outcome.kind, outcome.vendor_status) == (OutcomeKind.ACCEPTED, word)
    assert outcome.tracking_id


def test_unknown_status_word_is_left_for_reconciliation(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    simulators["messangi"].state.control.fail_next = 1
    simulators["messangi"].state.control.fail_with = "PENDING_REVIEW"
    [outcome] = sent(settings, catalog, [message()])
    assert (outcome.kind, outcome.code) == (OutcomeKind.AMBIGUOUS, "PENDING_REVIEW")


def test_text_over_1600_characters_fails_permanently_with_the_documented_error(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    [outcome] = sent(settings, catalog, [message(text="x" * 1601)])
    assert (outcome.kind, outcome.code) == (OutcomeKind.PERMANENT, "ERROR")
    assert outcome.reason == SEGMENTS_EXCEEDED
    assert simulators["messangi"].state.received == []


def test_text_of_exactly_1600_characters_is_accepted(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    [outcome] = sent(settings, catalog, [message(text="x" * 1600)])
    assert outcome.kind is OutcomeKind.ACCEPTED


def test_malformed_number_on_a_single_send_fails_with_the_vendor_explanation(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    [outcome] = sent(settings, catalog, [message(to="+0123")])
    assert (outcome.kind, outcome.code) == (OutcomeKind.PERMANENT, "400")
    assert outcome.reason is not None
    assert "E.164" in outcome.reason


def test_throttle_answer_is_rate_limited_with_its_retry_after(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    simulators["messangi"].state.control.ceiling = Ceiling(count=1, per_seconds=60)
    # Two texts: two requests, sent concurrently, so either may be the second.
    outcomes = sent(settings, catalog, [message(1), message(2, text="other text")])
    [limited] = [o for o in outcomes if o.kind is not OutcomeKind.ACCEPTED]
    assert (limited.kind, limited.code, limited.retry_after) == (
        OutcomeKind.RATE_LIMITED,
        "429",
        1.0,
    )


def test_api_key_is_sent_as_a_bearer_token(settings: Settings, catalog: Catalog) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return httpx.Response(200, json={"data": {"id": "m1", "status": "QUEUE"}})

    mocked(settings, catalog, from_default(message()), handler)
    assert seen == ["Bearer messangi-key-s3cret"]


# -- delivery-report request ------------------------------------------------------


def test_single_send_asks_for_no_reports_without_a_report_url(
    settings: Settings, catalog: Catalog
) -> None:
    body = built_body(settings, catalog, from_default(message()))
    assert "requestDR" not in body
    assert "callbacks" not in body


def test_single_send_asks_for_reports_at_the_report_url(
    settings: Settings, catalog: Catalog
) -> None:
    body = built_body(settings, catalog, from_default(message()), report_url=REPORT_URL)
    assert (body["requestDR"], body["callbacks"]) == (True, REPORT_URL)


def test_batch_asks_for_no_reports_without_a_report_url(
    settings: Settings, catalog: Catalog
) -> None:
    batch = from_default(message(1, to="+27821230001"), message(2, to="+27821230002"))
    body = built_body(settings, catalog, batch)
    assert "requestDR" not in body
    assert "callbacks" not in body


def test_batch_asks_for_reports_at_the_report_url(settings: Settings, catalog: Catalog) -> None:
    batch = from_default(message(1, to="+27821230001"), message(2, to="+27821230002"))
    body = built_body(settings, catalog, batch, report_url=REPORT_URL)
    assert (body["requestDR"], body["callbacks"]) == (True, REPORT_URL)


def test_simulator_accepts_a_send_that_asks_for_reports(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    outcomes = sent(
        settings, catalog, [message(1), message(2, to="+27821230002")], report_url=REPORT_URL
    )
    assert [o.kind for o in outcomes] == [OutcomeKind.ACCEPTED] * 2


# -- batches ------------------------------------------------------------------------


def test_batch_with_one_text_goes_out_as_one_request_with_an_id_per_message(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    messages = [message(i, to=f"+2782123{i:04d}") for i in range(1, 21)]
    outcomes = sent(settings, catalog, messages)
    sim = simulators["messangi"]
    issued = {r.to: r.tracking_id for r in sim.state.received}
    assert sim.state.requests == 1
    assert all(r.batch for r in sim.state.received)
    assert [o.tracking_id for o in outcomes] == [issued[m.recipient] for m in messages]
    assert len(set(issued.values())) == 20


def test_batch_goes_to_the_batch_url_setting_when_it_is_set(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    # The document's `v3/messages/batch` read off the host, not off /raven;
    # the base URL leads nowhere, so only the batch URL can have answered.
    update = {
        "base_url": closed_port_url(),
        "batch_url": f"{simulators.root}/messangi/v3/messages/batch",
    }
    elsewhere = settings.model_copy(
        update={"messangi": settings.messangi.model_copy(update=update)}
    )
    messages = [message(i, to=f"+2782123{i:04d}") for i in range(1, 4)]
    outcomes = sent(elsewhere, catalog, messages)
    assert [o.kind for o in outcomes] == [OutcomeKind.ACCEPTED] * 3
    assert simulators["messangi"].state.requests == 1


def test_batch_url_defaults_to_the_path_after_the_base_url(
    settings: Settings, catalog: Catalog
) -> None:
    urls: list[str] = []

    def vendor(request: httpx.Request) -> httpx.Response:
        urls.append(str(request.url))
        return httpx.Response(500)

    mocked(settings, catalog, from_default(message(1), message(2, to="+27821230002")), vendor)
    assert urls == [f"{settings.messangi.base_url}/v3/messages/batch"]


def test_messages_with_different_texts_go_in_separate_requests(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    messages = [message(i, to=f"+2782123{i:04d}", text=f"text {i % 2}") for i in range(1, 7)]
    outcomes = sent(settings, catalog, messages)
    received = {r.to: r.text for r in simulators["messangi"].state.received}
    assert simulators["messangi"].state.requests == 2
    assert [o.kind for o in outcomes] == [OutcomeKind.ACCEPTED] * 6
    assert [received[m.recipient] for m in messages] == [m.text for m in messages]


def test_batch_larger_than_the_catalog_batch_size_is_split(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    size = catalog.get("messangi").batch_size
    messages = [message(i, to=f"+278212{i:05d}") for i in range(1, size + 2)]
    outcomes = sent(settings, catalog, messages)
    assert simulators["messangi"].state.requests == 2
    assert {o.kind for o in outcomes} == {OutcomeKind.ACCEPTED}


def test_invalid_number_in_a_batch_fails_only_that_message(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    messages = [
        message(1, to="+27821230001"),
        message(2, to="+0123"),
        message(3, to="+27821230003"),
    ]
    outcomes = sent(settings, catalog, messages)
    assert [o.kind for o in outcomes] == [
        OutcomeKind.ACCEPTED,
        OutcomeKind.PERMANENT,
        OutcomeKind.ACCEPTED,
    ]
    assert (outcomes[1].code, outcomes[1].reason) == ("invalidNumber", "invalid number")
    assert simulators["messangi"].state.requests == 1
    assert len(simulators["messangi"].state.received) == 2


def test_same_recipient_twice_never_shares_a_batch(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    messages = [
        message(1, to="+27821230001"),
        message(2, to="+27821230002"),
        message(3, to="+27821230001"),
    ]
    outcomes = sent(settings, catalog, messages)
    assert [o.kind for o in outcomes] == [OutcomeKind.ACCEPTED] * 3
    assert outcomes[0].tracking_id != outcomes[2].tracking_id
    assert simulators["messangi"].state.requests == 2


def test_plan_keeps_order_and_batch_size_while_splitting_repeated_recipients(
    settings: Settings, catalog: Catalog
) -> None:
    entry = catalog.get("messangi").model_copy(update={"batch_size": 2})
    a, b, c = "+27821230001", "+27821230002", "+27821230003"
    messages = from_default(
        message(1, to=a), message(2, to=a), message(3, to=b), message(4, to=c), message(5, to=a)
    )

    async def go() -> list[list[int]]:
        async with httpx.AsyncClient() as client:
            adapter = MessangiAdapter(settings.messangi, client, entry)
            return [[m.id for m in batch] for batch in adapter.plan_batches(messages)]

    plan = asyncio.run(go())
    assert plan == [[1, 3], [2, 4], [5]]


def test_text_with_placeholders_is_not_batched(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    messages = [
        message(1, to="+27821230001", text="Use {0} now"),
        message(2, to="+27821230002", text="Use {0} now"),
    ]
    outcomes = sent(settings, catalog, messages)
    received = simulators["messangi"].state.received
    assert [o.kind for o in outcomes] == [OutcomeKind.ACCEPTED] * 2
    assert simulators["messangi"].state.requests == 2
    assert [r.text for r in received] == ["Use {0} now"] * 2
    assert not any(r.batch for r in received)


def campaign_message(mid: int, name: str, amount: str) -> OutboundMessage:
    return OutboundMessage(
        id=mid,
        reference=new_reference(),
        recipient=f"+2782123{mid:04d}",
        sender="",
        text=f"Hi {name}, {amount} due",
        template="Hi {0}, {1} due",
        params=(name, amount),
    )


def test_campaign_messages_sharing_a_template_go_as_one_request_with_params(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    messages = [campaign_message(1, "Ana", "$5"), campaign_message(2, "Bo", "$7")]
    body = built_body(settings, catalog, messages)
    outcomes = sent(settings, catalog, messages)
    received = {r.to: r.text for r in simulators["messangi"].state.received}
    assert body["text"] == "Hi {0}, {1} due"
    assert [t["params"] for t in body["to"]] == [["Ana", "$5"], ["Bo", "$7"]]
    assert simulators["messangi"].state.requests == 1
    assert [o.kind for o in outcomes] == [OutcomeKind.ACCEPTED] * 2
    assert [received[m.recipient] for m in messages] == ["Hi Ana, $5 due", "Hi Bo, $7 due"]


def test_batch_text_over_1600_characters_fails_every_message_permanently(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    messages = [message(i, to=f"+2782123{i:04d}", text="x" * 1601) for i in range(1, 4)]
    outcomes = sent(settings, catalog, messages)
    assert [(o.kind, o.code, o.reason) for o in outcomes] == [
        (OutcomeKind.PERMANENT, "ERROR", SEGMENTS_EXCEEDED)
    ] * 3
    assert simulators["messangi"].state.received == []


def test_server_error_on_a_batch_retries_every_message(
    settings: Settings, catalog: Catalog, simulators: SimulatorServer
) -> None:
    simulators["messangi"].state.control.fail_next = 1
    simulators["messangi"].state.control.fail_with = "503"
    messages = [message(i, to=f"+2782123{i:04d}") for i in range(1, 4)]
    outcomes = sent(settings, catalog, messages)
    assert [(o.kind, o.code) for o in outcomes] == [(OutcomeKind.RETRY, "503")] * 3


def test_batch_externalid_names_the_batch_by_its_first_reference_not_a_message(
    settings: Settings, catalog: Catalog
) -> None:
    batch = from_default(message(1001, to="+27821230001"), message(1002, to="+27821230002"))
    body = built_body(settings, catalog, batch)
    assert body["externalId"] == f"batch{batch[0].reference}x2"
    assert our_reference(body["externalId"]) is None
    assert body["to"] == [
        {"to": "+27821230001", "params": []},
        {"to": "+27821230002", "params": []},
    ]


def test_batch_recipient_the_answer_does_not_mention_is_ambiguous(
    settings: Settings, catalog: Catalog
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={
                "meta": {},
                "data": {"status": "QUEUE", "ids": [{"id": "m1", "mobile": "+27821230001"}]},
            },
        )

    batch = from_default(message(1, to="+27821230001"), message(2, to="+27821230002"))
    outcomes = mocked(settings, catalog, batch, handler)
    assert [o.kind for o in outcomes] == [OutcomeKind.ACCEPTED, OutcomeKind.AMBIGUOUS]
    assert outcomes[0].tracking_id == "m1"


def test_batch_answer_matches_mobiles_written_without_the_plus(
    settings: Settings, catalog: Catalog
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={
                "meta": {},
                "data": {
                    "status": "QUEUE",
                    "ids": [
                        {"id": "m2", "mobile": "27821230002"},
                        {"id": "m1", "mobile": "27821230001"},
                    ],
                },
            },
        )

    batch = from_default(message(1, to="+27821230001"), message(2, to="+27821230002"))
    outcomes = mocked(settings, catalog, batch, handler)
    assert [o.tracking_id for o in outcomes] == ["m1", "m2"]


def test_batch_answer_without_data_is_ambiguous(settings: Settings, catalog: Catalog) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"meta": {"explain": "ok"}})

    batch = from_default(message(1, to="+27821230001"), message(2, to="+27821230002"))
    outcomes = mocked(settings, catalog, batch, handler)
    assert [o.kind for o in outcomes] == [OutcomeKind.AMBIGUOUS] * 2


# -- the simulator's own validation --------------------------------------------------


def test_simulator_accepts_the_documented_to_colon_key(
    settings: Settings, simulators: SimulatorServer
) -> None:
    body = {
        "from": "12345",
        "text": "Hi {0}, your balance is ${1}",
        "type": "MT",
        "to": [{"to:": "+525500000000", "params": ["Elizabeth", 10.65]}],
    }
    response = httpx.post(
        f"{settings.messangi.base_url}/v3/messages/batch",
        json=body,
        headers={"Authorization": "Bearer messangi-key-s3cret"},
    )
    [received] = simulators["messangi"].state.received
    assert response.status_code == 200
    assert received.text == "Hi Elizabeth, your balance is $10.65"


def test_simulator_rejects_a_send_without_a_required_field(
    settings: Settings, simulators: SimulatorServer
) -> None:
    response = httpx.post(
        f"{settings.messangi.base_url}/v2/messages",
        json={"from": "12345", "to": "+27821230001"},
        headers={"Authorization": "Bearer messangi-key-s3cret"},
    )
    assert response.status_code == 400
    assert response.json()["meta"]["explain"] == "text is required"
