"""Which callback URLs we post to: public addresses only, unless allowed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

import pytest

from smsdispatch.producer import callback_urls
from smsdispatch.producer.callback_urls import (
    AsyncUrlChecker,
    RefusedCallbackUrl,
    Resolver,
    UrlChecker,
    check_url,
)


def resolving_to(*addresses: str) -> Resolver:
    def resolve(host: str, port: int) -> Iterable[str]:
        return addresses

    return resolve


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.5", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("::ffff:127.0.0.1", "loopback"),
        ("224.0.0.1", "multicast"),
        ("100.100.100.200", "non-public"),  # shared address space: a cloud's metadata
        ("2002:a00:5::", "private"),  # 6to4 around 10.0.0.5
    ],
)
def test_a_host_resolving_to_a_non_public_address_is_refused_naming_it(
    address: str, kind: str
) -> None:
    with pytest.raises(RefusedCallbackUrl, match=f"{address}, a {kind} address"):
        check_url("https://hooks.example/x", allow_private=False, resolve=resolving_to(address))


def test_one_private_address_among_public_ones_is_enough_to_refuse() -> None:
    resolve = resolving_to("93.184.216.34", "10.0.0.1")
    with pytest.raises(RefusedCallbackUrl, match=r"10\.0\.0\.1"):
        check_url("https://hooks.example/x", allow_private=False, resolve=resolve)


def test_a_public_address_is_accepted() -> None:
    check_url("https://hooks.example/x", allow_private=False, resolve=resolving_to("93.184.216.34"))


def test_the_setting_allows_private_addresses() -> None:
    check_url("http://127.0.0.1:8080/x", allow_private=True, resolve=resolving_to("127.0.0.1"))


def test_a_host_that_does_not_resolve_is_refused() -> None:
    def fails(host: str, port: int) -> Iterable[str]:
        raise OSError("Name or service not known")

    with pytest.raises(RefusedCallbackUrl, match="does not resolve"):
        check_url("https://nowhere.invalid/x", allow_private=True, resolve=fails)


def test_the_checker_resolves_a_url_once_while_its_verdict_is_fresh() -> None:
    asked: list[str] = []

    def resolve(host: str, port: int) -> Iterable[str]:
        asked.append(host)
        return ["93.184.216.34"]

    now = [0.0]
    checker = UrlChecker(False, ttl_seconds=60, resolve=resolve, monotonic=lambda: now[0])
    checker("https://hooks.example/a")
    checker("https://hooks.example/a")
    now[0] = 61.0
    checker("https://hooks.example/a")
    assert asked == ["hooks.example", "hooks.example"]


def test_callbacks_to_one_host_that_come_together_wait_for_one_lookup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[str] = []

    def slow_resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        time.sleep(0.2)
        return ["93.184.216.34"]

    monkeypatch.setattr(callback_urls, "_resolve", slow_resolve)
    checker = AsyncUrlChecker(False)

    async def together() -> None:
        await asyncio.gather(*(checker("https://hooks.example/a") for _ in range(10)))

    asyncio.run(together())
    assert asked == ["hooks.example"]
