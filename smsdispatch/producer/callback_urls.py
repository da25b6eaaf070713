"""Which status-callback URLs we agree to POST to.

A callback URL is the client's, but the POST leaves from inside our
network: a URL naming a private, loopback or link-local address (the cloud
metadata service at 169.254.169.254, a database on 10.0.0.5, localhost)
would let a client reach what it must not. So the host is resolved and every
address it resolves to is checked, at submission (a clear 422 naming
`status_callback`) and again before posting (DNS may have changed since; a
host's verdict is kept a few seconds).
`CALLBACK_ALLOW_PRIVATE` lifts the address check (tests, a receiver on the
same private network).

What is left open: the HTTP client resolves the name again when it connects,
so a name whose answers flip within that moment (DNS rebinding) can still
reach a private address once; pinning the connection to the checked address
would close it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from smsdispatch.vocabulary.errors import InputError

MAX_URL = 2048
Resolver = Callable[[str, int], Iterable[str]]


class RefusedCallbackUrl(InputError, ValueError):
    """The URL is malformed or names an address we do not post to; says which."""


def _resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def parse(url: str) -> tuple[str, int]:
    """The URL's host and port, or `RefusedCallbackUrl` saying what is wrong with it."""
    if not url or len(url) > MAX_URL:
        raise RefusedCallbackUrl(f"must be an http or https URL of 1 to {MAX_URL} characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise RefusedCallbackUrl(f"must be an http or https URL, not {parts.scheme or 'none'!r}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise RefusedCallbackUrl("has a port that is not a number from 0 to 65535") from None
    if not host:
        raise RefusedCallbackUrl("names no host")
    if parts.username or parts.password:
        raise RefusedCallbackUrl("must not carry a user or password")
    return host, port or (443 if parts.scheme == "https" else 80)


def refused_address(address: str) -> str | None:
    """Why we do not post to this address, or None if it is a public one."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone
    if isinstance(ip, ipaddress.IPv6Address):
        # An IPv4 address inside an IPv6 one (mapped, 6to4) is where it goes.
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is not None:
            ip = embedded
    for kind, yes in (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("private", ip.is_private),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved or ip.is_unspecified),
        # Anything else not routed on the internet: shared address space
        # (100.64.0.0/10, where some clouds keep their metadata service).
        ("non-public", not ip.is_global),
    ):
        if yes:
            return kind
    return None


def check_addresses(host: str, addresses: Iterable[str], allow_private: bool) -> None:
    found = list(addresses)
    if not found:
        raise RefusedCallbackUrl(f"host {host!r} resolves to no address")
    if allow_private:
        return
    for address in found:
        kind = refused_address(address)
        if kind is not None:
            raise RefusedCallbackUrl(
                f"host {host!r} resolves to {address}, a {kind} address: callbacks go to "
                "public addresses only (CALLBACK_ALLOW_PRIVATE allows others)"
            )


def check_url(url: str, *, allow_private: bool, resolve: Resolver = _resolve) -> None:
    """Refuse (`RefusedCallbackUrl`) a URL we would not post to, resolving its host."""
    host, port = parse(url)
    try:
        addresses = list(resolve(host, port))
    except (OSError, UnicodeError) as exc:
        raise RefusedCallbackUrl(f"host {host!r} does not resolve: {exc}") from None
    check_addresses(host, addresses, allow_private)


# Callback hosts are resolved on threads of their own: on the loop's default
# executor, a receiver whose DNS never answers would hold the threads the
# vendors' connections (aiohttp's resolver) and other work need.
_DNS_THREADS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="callback-dns")


async def check_url_async(url: str, *, allow_private: bool) -> None:
    """`check_url` on a resolver pool of the callbacks' own (before each POST)."""
    host, port = parse(url)
    loop = asyncio.get_running_loop()
    try:
        addresses = await loop.run_in_executor(_DNS_THREADS, _resolve, host, port)
    except (OSError, UnicodeError) as exc:
        raise RefusedCallbackUrl(f"host {host!r} does not resolve: {exc}") from None
    check_addresses(host, addresses, allow_private)


class AsyncUrlChecker:
    """`check_url_async` with each host's verdict kept a few seconds, and one
    lookup at a time per host: the resolver runs in a small thread pool, and a
    thousand callbacks to one host need one answer, not a thousand. Kept briefly, so a host whose
    DNS changes is checked again soon."""

    def __init__(
        self,
        allow_private: bool,
        *,
        ttl_seconds: float = 10.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.allow_private = allow_private
        self.ttl = ttl_seconds
        self.monotonic = monotonic
        self._seen: dict[tuple[str, int], tuple[float, str | None]] = {}
        self._pending: dict[tuple[str, int], asyncio.Future[tuple[float, str | None]]] = {}

    async def __call__(self, url: str) -> None:
        key = parse(url)
        now = self.monotonic()
        seen = self._seen.get(key)
        if seen is None or now - seen[0] > self.ttl:
            # Callbacks to one host that come together wait for one lookup.
            pending = self._pending.get(key)
            if pending is None:
                pending = asyncio.ensure_future(self._check(url, now))
                self._pending[key] = pending
                pending.add_done_callback(lambda _: self._pending.pop(key, None))
            seen = await asyncio.shield(pending)
        if seen[1] is not None:
            raise RefusedCallbackUrl(seen[1])

    async def _check(self, url: str, now: float) -> tuple[float, str | None]:
        try:
            await check_url_async(url, allow_private=self.allow_private)
            seen: tuple[float, str | None] = (now, None)
        except RefusedCallbackUrl as exc:
            seen = (now, str(exc))
        if len(self._seen) > 10_000:
            self._seen.clear()
        self._seen[parse(url)] = seen
        return seen


class UrlChecker:
    """`check_url` with its verdicts kept a minute: a batch of ten thousand
    messages with one URL resolves it once."""

    def __init__(
        self,
        allow_private: bool,
        *,
        ttl_seconds: float = 60.0,
        resolve: Resolver = _resolve,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.allow_private = allow_private
        self.ttl = ttl_seconds
        self.resolve = resolve
        self.monotonic = monotonic
        self._seen: dict[str, tuple[float, str | None]] = {}

    def __call__(self, url: str) -> None:
        now = self.monotonic()
        seen = self._seen.get(url)
        if seen is None or now - seen[0] > self.ttl:
            try:
                check_url(url, allow_private=self.allow_private, resolve=self.resolve)
                seen = (now, None)
            except RefusedCallbackUrl as exc:
                seen = (now, str(exc))
            if len(self._seen) > 10_000:
                self._seen.clear()
            self._seen[url] = seen
        if seen[1] is not None:
            raise RefusedCallbackUrl(seen[1])
