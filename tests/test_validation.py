"""Validation names the bad field and why, before anything is stored."""

from __future__ import annotations

from typing import Any

import pytest

from smsdispatch.config.catalog import Catalog, ProviderEntry, RateLimit, Sender, SenderKind
from smsdispatch.producer.validation import InvalidMessage, SendRequest, Validator
from smsdispatch.vocabulary.message import Encoding
from tests.settings import TEST_CREDENTIALS, make_settings


@pytest.fixture
def validator(catalog: Catalog) -> Validator:
    return Validator(make_settings(), catalog)


def request(**kw: Any) -> SendRequest:
    values: dict[str, Any] = {"to": "+27821230001", "text": "hello", "provider": "cue"} | kw
    return SendRequest(**values)


def invalid(validator: Validator, **kw: Any) -> InvalidMessage:
    with pytest.raises(InvalidMessage) as exc:
        validator.validate(request(**kw))
    return exc.value


def test_valid_message_is_normalized_to_e164_with_encoding_and_segments(
    validator: Validator,
) -> None:
    valid = validator.validate(request(to="0027 82 123 0001", text="ж" * 71))
    assert valid.recipient == "+27821230001"
    assert (valid.encoding, valid.segments) == (Encoding.UCS2, 2)
    assert valid.sender == "CUESMS"


def test_local_number_is_read_in_the_default_region(catalog: Catalog) -> None:
    valid = Validator(make_settings(), catalog, "ZA").validate(request(to="082 123 0001"))
    assert valid.recipient == "+27821230001"


@pytest.mark.parametrize("to", ["12345", "+999123", "not a number", "+2782123000199999"])
def test_invalid_number_is_rejected_naming_the_to_field(validator: Validator, to: str) -> None:
    assert invalid(validator, to=to).field == "to"


def test_unknown_provider_is_rejected_listing_the_known_ones(validator: Validator) -> None:
    error = invalid(validator, provider="twilio")
    assert error.field == "provider"
    assert "cue" in error.reason
    assert "skycore" in error.reason


def test_text_over_the_provider_limit_is_rejected(validator: Validator) -> None:
    error = invalid(validator, provider="messangi", text="a" * 1601)
    assert error.field == "text"
    assert "1600" in error.reason


def test_messangi_takes_1600_characters(validator: Validator) -> None:
    assert validator.validate(request(provider="messangi", text="a" * 1600)).segments == 11


def test_empty_text_is_rejected(validator: Validator) -> None:
    assert invalid(validator, text="  ").field == "text"


def test_sender_not_in_the_catalog_is_rejected(validator: Validator) -> None:
    error = invalid(validator, sender="OTHERBRAND")
    assert error.field == "sender"
    assert "CUESMS" in error.reason


def test_alphanumeric_sender_longer_than_11_characters_is_rejected(catalog: Catalog) -> None:
    settings = make_settings(cue={"default_sender": "TWELVECHARSX"})
    with pytest.raises(InvalidMessage) as exc:
        Validator(settings, catalog).validate(request())
    assert exc.value.field == "sender"
    assert "11" in exc.value.reason


def test_overlong_idempotency_key_is_rejected(validator: Validator) -> None:
    assert invalid(validator, idempotency_key="k" * 129).field == "idempotency_key"


def test_priority_is_bulk_or_urgent(validator: Validator) -> None:
    assert validator.validate(request(priority=1)).priority == 1
    assert invalid(validator, priority=5).field == "priority"


def test_a_pool_mixing_limited_and_unlimited_senders_is_refused() -> None:
    with pytest.raises(ValueError, match="mixes senders"):
        ProviderEntry(
            name="cue",
            senders=(
                Sender(id="27821230000", kind=SenderKind.LONG_CODE),
                Sender(id="CUESMS", kind=SenderKind.ALPHANUMERIC),
            ),
            sender_limits={SenderKind.LONG_CODE: RateLimit(count=1, per_seconds=1)},
            pools={"mixed": ("27821230000", "CUESMS")},
        )


def test_settings_refuse_a_request_timeout_as_long_as_the_reclaim_deadline() -> None:
    with pytest.raises(ValueError, match="SENDING_DEADLINE_SECONDS"):
        make_settings(http_total_timeout_seconds=120, sending_deadline_seconds=120)


def _full_parse(candidate: str) -> str | None:
    import phonenumbers

    try:
        number = phonenumbers.parse(candidate, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def test_the_e164_fast_path_agrees_with_phonenumbers_for_every_region() -> None:
    import random

    import phonenumbers

    from smsdispatch.producer.validation import already_e164

    rng = random.Random(7)
    candidates: list[str] = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
            digits = list(e164[1:])
            for _ in range(5):
                mutated = digits.copy()
                mutated[rng.randrange(len(mutated))] = str(rng.randrange(10))
                candidates.append("+" + "".join(mutated))
            candidates += [e164, e164 + "1", e164[:-1]]
    accepted = [c for c in candidates if already_e164(c)]
    assert len(accepted) > len(candidates) // 3  # the fast path does take most valid ones
    assert [c for c in accepted if _full_parse(c) != c] == []


def test_a_vendor_without_its_base_url_is_rejected_naming_the_setting(catalog: Catalog) -> None:
    settings = make_settings(skycore=TEST_CREDENTIALS["skycore"])
    with pytest.raises(InvalidMessage) as exc:
        Validator(settings, catalog).validate(request(provider="skycore", sender="00000"))
    assert (exc.value.field, exc.value.reason) == (
        "provider",
        "skycore cannot send: SKYCORE__BASE_URL is not set",
    )


def test_a_vendor_without_credentials_is_still_accepted_for_the_workers_to_send(
    catalog: Catalog,
) -> None:
    # A producer need not hold vendor secrets: the worker that lacks them pauses.
    settings = make_settings(restcomm={})
    assert (
        Validator(settings, catalog).validate(request(provider="restcomm")).provider == "restcomm"
    )
