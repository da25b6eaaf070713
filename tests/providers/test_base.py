"""The shared send flow turns every failure into an outcome for the messages it touched."""

from __future__ import annotations

import asyncio

import httpx

from config.catalog import Catalog
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
