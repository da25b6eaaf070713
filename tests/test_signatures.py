"""What a receiver checks: `smsdispatch.callbacks.verify_signature`, Stripe's scheme."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from smsdispatch.callbacks import SignatureError, check_signature, verify_signature
from smsdispatch.vocabulary.signatures import signature_header

BODY = b'{"id":7,"sequence":12,"status":"delivered"}'
SECRET = "sdcs_receiver-secret"
T = 1_764_000_000


def test_a_good_signature_is_accepted() -> None:
    assert verify_signature(BODY, signature_header(BODY, SECRET, T), SECRET, now=T + 10)


def test_the_signature_is_the_hex_hmac_sha256_of_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert signature_header(BODY, SECRET, T) == f"t={T},v1={expected}"


def test_a_tampered_body_is_rejected() -> None:
    header = signature_header(BODY, SECRET, T)
    assert not verify_signature(BODY.replace(b"delivered", b"failed"), header, SECRET, now=T)


def test_another_secret_is_rejected() -> None:
    header = signature_header(BODY, SECRET, T)
    assert not verify_signature(BODY, header, "another", now=T)


def test_a_signature_older_than_the_tolerance_is_rejected_as_a_replay() -> None:
    header = signature_header(BODY, SECRET, T)
    assert verify_signature(BODY, header, SECRET, tolerance_seconds=300, now=T + 300)
    with pytest.raises(SignatureError, match="away from now"):
        check_signature(BODY, header, SECRET, tolerance_seconds=300, now=T + 301)


def test_a_changed_timestamp_breaks_the_signature() -> None:
    header = signature_header(BODY, SECRET, T).replace(f"t={T}", f"t={T + 60}")
    with pytest.raises(SignatureError, match="no signature matches"):
        check_signature(BODY, header, SECRET, now=T + 60)


def test_one_matching_signature_among_several_is_enough_while_a_secret_rolls_over() -> None:
    good = signature_header(BODY, SECRET, T).split(",v1=")[1]
    assert verify_signature(BODY, f"t={T},v1=00ff,v1={good}", SECRET, now=T)


@pytest.mark.parametrize(
    ("header", "why"),
    [
        ("", "no Smsdispatch-Signature"),
        ("v1=ab", "no t="),
        (f"t={T}", "no v1="),
        ("t=x,v1=a", "not a number"),
    ],
)
def test_a_malformed_header_says_what_is_missing(header: str, why: str) -> None:
    with pytest.raises(SignatureError, match=why):
        check_signature(BODY, header, SECRET, now=T)
    assert not verify_signature(BODY, header, SECRET, now=T)


def test_a_forged_signature_that_is_not_ascii_is_rejected_not_raised() -> None:
    header = f"t={T},v1=\u00e9\u00e9\u00e9"
    assert verify_signature(BODY, header, SECRET, now=T) is False
