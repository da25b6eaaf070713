"""The behaviour every vendor adapter must have, run against its simulator.

Each vendor's test module subclasses `AdapterContract`, names its vendor and
lists its documented codes in `CODE_CASES`; the tests here then hold for it.
Vendor-specific behaviour gets its own tests in the vendor's module.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, ClassVar

import pytest
from pydantic import SecretStr

from smsdispatch.config.catalog import Catalog
from smsdispatch.config.settings import Settings
from smsdispatch.local.simulators import SimulatorServer
from smsdispatch.providers.registry import ADAPTERS, build_adapter
from smsdispatch.providers.transport import vendor_client
from smsdispatch.vocabulary.message import OutboundMessage, new_reference
from smsdispatch.vocabulary.outcomes import Outcome, OutcomeKind


def message(
    mid: int = 1,
    *,
    to: str = "+27821230001",
    sender: str | None = None,
    text: str = "Your code is 12345",
) -> OutboundMessage:
    """A message as the database would hand it over: a fresh random reference."""
    return OutboundMessage(
        id=mid, reference=new_reference(), recipient=to, sender=sender or "", text=text
    )


def send(
    settings: Settings,
    catalog: Catalog,
    vendor: str,
    messages: Sequence[OutboundMessage],
    *,
    timeout: float = 5.0,
    **adapter_kwargs: Any,
) -> list[Outcome]:
    """Send through a fresh client, as a worker process would."""
    vendor_settings = getattr(settings, vendor)
    fixed = [m if m.sender else replace(m, sender=vendor_settings.default_sender) for m in messages]

    async def go() -> list[Outcome]:
        async with vendor_client(
            connect_timeout=timeout, read_timeout=timeout, max_connections=50
        ) as client:
            adapter = build_adapter(vendor, settings, client, catalog, **adapter_kwargs)
            return await adapter.send(fixed)

    return asyncio.run(go())


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class AdapterContract:
    vendor: ClassVar[str]
    # (documented code, the outcome kind it must land in)
    CODE_CASES: ClassVar[Sequence[tuple[str, OutcomeKind]]] = ()

    def test_successful_send_stores_the_tracking_id_the_vendor_issued(
        self, settings: Settings, catalog: Catalog, simulators: SimulatorServer
    ) -> None:
        [outcome] = send(settings, catalog, self.vendor, [message(7)])
        [received] = simulators[self.vendor].state.received
        assert outcome.kind is OutcomeKind.ACCEPTED, outcome
        assert outcome.tracking_id == received.tracking_id
        assert received.text == "Your code is 12345"
        assert received.to.lstrip("+") == "27821230001"

    def test_every_message_in_a_call_gets_its_own_tracking_id(
        self, settings: Settings, catalog: Catalog, simulators: SimulatorServer
    ) -> None:
        messages = [message(i, to=f"+2782123{i:04d}") for i in range(1, 6)]
        outcomes = send(settings, catalog, self.vendor, messages)
        received = {r.to.lstrip("+"): r.tracking_id for r in simulators[self.vendor].state.received}
        assert [o.kind for o in outcomes] == [OutcomeKind.ACCEPTED] * 5
        assert [o.tracking_id for o in outcomes] == [received[m.recipient_digits] for m in messages]

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "code_case" in metafunc.fixturenames:
            cases = metafunc.cls.CODE_CASES if metafunc.cls else ()
            metafunc.parametrize("code_case", cases, ids=[f"{c}->{k}" for c, k in cases])

    def test_documented_code_lands_in_its_outcome_class(
        self,
        code_case: tuple[str, OutcomeKind],
        settings: Settings,
        catalog: Catalog,
        simulators: SimulatorServer,
    ) -> None:
        code, kind = code_case
        simulators[self.vendor].state.control.fail_next = 1
        simulators[self.vendor].state.control.fail_with = code
        [outcome] = send(settings, catalog, self.vendor, [message()])
        assert (outcome.code, outcome.kind) == (code, kind), outcome
        assert simulators[self.vendor].state.received == []

    def test_server_error_is_retried(
        self, settings: Settings, catalog: Catalog, simulators: SimulatorServer
    ) -> None:
        simulators[self.vendor].state.control.fail_next = 1
        simulators[self.vendor].state.control.fail_with = "http:503"
        [outcome] = send(settings, catalog, self.vendor, [message()])
        assert outcome.kind is OutcomeKind.RETRY, outcome

    def test_connection_refused_is_retried(self, settings: Settings, catalog: Catalog) -> None:
        vendor_settings = getattr(settings, self.vendor).model_copy(
            update={"base_url": closed_port_url()}
        )
        down = settings.model_copy(update={self.vendor: vendor_settings})
        [outcome] = send(down, catalog, self.vendor, [message()])
        assert outcome.kind is OutcomeKind.RETRY, outcome

    def test_read_timeout_after_the_vendor_took_it_is_not_resent_blindly(
        self, settings: Settings, catalog: Catalog, simulators: SimulatorServer
    ) -> None:
        simulators[self.vendor].state.control.hang_next = 1
        simulators[self.vendor].state.control.hang_seconds = 1.0
        [outcome] = send(settings, catalog, self.vendor, [message()], timeout=0.3)
        dedup = ADAPTERS[self.vendor].deduplicates_reference
        expected = OutcomeKind.RETRY if dedup else OutcomeKind.AMBIGUOUS
        assert outcome.kind is expected, outcome

    def test_wrong_credentials_pause_the_account(
        self, settings: Settings, catalog: Catalog
    ) -> None:
        wrong = settings.model_copy(update={self.vendor: wrong_credentials(settings, self.vendor)})
        [outcome] = send(wrong, catalog, self.vendor, [message()])
        assert outcome.kind is OutcomeKind.ACCOUNT, outcome

    def test_missing_credentials_pause_the_vendor_naming_the_fix_and_send_nothing(
        self, settings: Settings, catalog: Catalog, simulators: SimulatorServer
    ) -> None:
        blank = settings.model_copy(update={self.vendor: blank_credentials(settings, self.vendor)})
        [outcome] = send(blank, catalog, self.vendor, [message()])
        assert (outcome.kind, outcome.code) == (OutcomeKind.ACCOUNT, "configuration"), outcome
        assert simulators[self.vendor].state.requests == 0


def blank_credentials(settings: Settings, vendor: str) -> Any:
    vendor_settings = getattr(settings, vendor)
    blanks = {k: SecretStr("") for k, v in vendor_settings if isinstance(v, SecretStr)}
    return vendor_settings.model_copy(update=blanks)


def wrong_credentials(settings: Settings, vendor: str) -> Any:
    vendor_settings = getattr(settings, vendor)
    secrets = {k: SecretStr("wrong") for k, v in vendor_settings if isinstance(v, SecretStr)}
    return vendor_settings.model_copy(update=secrets)
