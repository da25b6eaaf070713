"""Signed status callbacks, Stripe's way: what we send and what a receiver checks.

    Smsdispatch-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">

The timestamp is inside the signed text, so a captured request cannot be
replayed later than `tolerance_seconds`; the receiver checks the raw bytes it
received, before parsing them. Several `v1=` entries may appear (while a
secret is rolled over): one matching is enough.

A client application imports `smsdispatch.callbacks.verify_signature`; this
module needs only the standard library (and the package's exception tree).
"""

from __future__ import annotations

import hashlib
import hmac
import time

from smsdispatch.vocabulary.errors import InputError

HEADER = "Smsdispatch-Signature"
SCHEME = "v1"


class SignatureError(InputError, ValueError):
    """The header is missing, malformed, stale, or no signature in it matches."""


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """The hex HMAC-SHA256 of "<timestamp>.<payload>" under `secret`."""
    signed = str(timestamp).encode() + b"." + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(payload: bytes, secret: str, timestamp: int) -> str:
    """The value of the `Smsdispatch-Signature` header for this body."""
    return f"t={timestamp},{SCHEME}={sign(payload, secret, timestamp)}"


def _parse(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if name == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError(f"the timestamp t={value!r} is not a number") from None
        elif name == SCHEME:
            signatures.append(value)
    if timestamp is None:
        raise SignatureError(f"no t=<unix seconds> in the {HEADER} header")
    if not signatures:
        raise SignatureError(f"no {SCHEME}=<signature> in the {HEADER} header")
    return timestamp, signatures


def check_signature(
    payload: bytes,
    header: str,
    secret: str,
    tolerance_seconds: float = 300,
    now: float | None = None,
) -> None:
    """Raise `SignatureError` saying why unless `header` signs `payload` under
    `secret` within `tolerance_seconds` of `now` (default: this host's clock)."""
    if not header:
        raise SignatureError(f"no {HEADER} header")
    timestamp, signatures = _parse(header)
    expected = sign(payload, secret, timestamp)
    # Compare with every signature given, whatever matches, in constant time;
    # as bytes: compare_digest refuses a str that is not ASCII, and a forged
    # header may hold anything.
    wanted = expected.encode()
    given_bytes = [given.encode("utf-8", "replace") for given in signatures]
    if not any([hmac.compare_digest(wanted, given) for given in given_bytes]):
        raise SignatureError("no signature matches this body and secret")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        raise SignatureError(
            f"the signature's timestamp is {abs(current - timestamp):.0f}s away from now "
            f"(tolerance {tolerance_seconds:g}s): a replay, or a clock that is off"
        )


def verify_signature(
    payload: bytes,
    header: str,
    secret: str,
    tolerance_seconds: float = 300,
    now: float | None = None,
) -> bool:
    """True if `header` (the `Smsdispatch-Signature` value) signs the raw
    `payload` under `secret` and is no older than `tolerance_seconds`.

    `check_signature` says why when it does not.
    """
    try:
        check_signature(payload, header, secret, tolerance_seconds, now)
    except SignatureError:
        return False
    return True
