"""The shared send flow turns every failure into an outcome for the messages it touched."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from smsdispatch.config.catalog import Catalog
from smsdispatch.providers.base import retry_after_seconds
from smsdispatch.providers.registry import build_adapter
from smsdispatch.vocabulary.message import OutboundMessage, new_reference
from smsdispatch.vocabulary.outcomes import Outcome, OutcomeKind
from tests.settings import make_settings


def test_an_unexpected_error_while_sending_is_ambiguous_and_spares_the_other_messages(
    catalog: Catalog,
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if b"boom" in request.content:
            raise RuntimeError("not an httpx error")
        return httpx.Response(200, json={"status": "Success", "tracking-id": "T1"})

    async def go() -> list[OutcomeKind]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            adapter = build_adapter("skycore", make_settings(), client, catalog)
            messages = [
                OutboundMessage(1, new_reference(), "+12025550001", "00000", "fine"),
                OutboundMessage(2, new_reference(), "+12025550002", "00000", "boom"),
            ]
            return [o.kind for o in await adapter.send(messages)]

    assert asyncio.run(go()) == [OutcomeKind.ACCEPTED, OutcomeKind.AMBIGUOUS]


def test_a_retry_after_date_is_read_against_the_vendors_own_date_header() -> None:
    response = httpx.Response(
        429,
        headers={
            "Date": "Tue, 01 Dec 2026 10:00:00 GMT",
            "Retry-After": "Tue, 01 Dec 2026 10:00:30 GMT",
        },
    )

    assert retry_after_seconds(response) == 30.0


def test_a_retry_after_date_without_the_vendors_date_is_not_guessed_from_our_clock() -> None:
    response = httpx.Response(429, headers={"Retry-After": "Tue, 01 Dec 2026 10:00:30 GMT"})

    assert retry_after_seconds(response) is None


# -- a code no document gives, on an answer whose HTTP status says what it is --

K = OutcomeKind

# Each vendor's error body carrying a code its document does not give.
UNKNOWN_CODE_BODIES: dict[str, object] = {
    "cue": {"status": -99, "message": "New Thing", "details": ""},
    "restcomm": {"code": 39999, "message": "New Thing"},
    "skycore": {"status": "Failure", "error-code": "E999", "error-info": "New Thing"},
    "smsbuddy": {"status": "417", "message": "New Thing"},
}


def answer_with_unknown_code(catalog: Catalog, vendor: str, http_status: int) -> Outcome:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(http_status, json=UNKNOWN_CODE_BODIES[vendor])

    async def go() -> Outcome:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            settings = make_settings()
            adapter = build_adapter(vendor, settings, client, catalog)
            sender = getattr(settings, vendor).default_sender
            [outcome] = await adapter.send(
                [OutboundMessage(1, new_reference(), "+12025550001", sender, "hi")]
            )
            return outcome

    return asyncio.run(go())


@pytest.mark.parametrize("vendor", sorted(UNKNOWN_CODE_BODIES))
@pytest.mark.parametrize(
    ("http_status", "kind"),
    [
        (500, K.RETRY),
        (503, K.RETRY),
        (429, K.RATE_LIMITED),
        (401, K.ACCOUNT),
        (403, K.ACCOUNT),
    ],
)
def test_an_unknown_code_on_a_status_that_gives_its_class_takes_it_and_is_not_undocumented(
    catalog: Catalog, vendor: str, http_status: int, kind: OutcomeKind
) -> None:
    outcome = answer_with_unknown_code(catalog, vendor, http_status)
    assert (outcome.kind, outcome.undocumented) == (kind, False), outcome


@pytest.mark.parametrize("vendor", sorted(UNKNOWN_CODE_BODIES))
def test_an_unknown_code_on_a_plain_client_error_is_undocumented_and_retried(
    catalog: Catalog, vendor: str
) -> None:
    outcome = answer_with_unknown_code(catalog, vendor, 400)
    assert (outcome.kind, outcome.undocumented) == (K.RETRY, True), outcome
