"""The shared send flow turns every failure into an outcome for the messages it touched."""

from __future__ import annotations

import asyncio

import httpx

from config.catalog import Catalog
from providers.base import retry_after_seconds
from providers.message import OutboundMessage, new_reference
from providers.outcomes import OutcomeKind
from providers.registry import build_adapter
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
