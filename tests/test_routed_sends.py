"""Messages that name no vendor are routed by the catalog's routes when they are accepted."""

from __future__ import annotations

from collections import Counter

import pytest
import redis
from celery import Celery
from sqlalchemy import select

from smsdispatch.config.catalog import Catalog
from smsdispatch.producer.api import Producer
from smsdispatch.producer.validation import InvalidMessage, SendRequest
from smsdispatch.store.db import Database
from smsdispatch.store.models import messages
from smsdispatch.vocabulary import names
from tests.settings import TEST_CREDENTIALS, make_settings


def stored(db: Database, message_id: int) -> tuple[str, str, str | None]:
    m = messages.c
    with db.session() as s:
        row = s.execute(select(m.provider, m.sender, m.route).where(m.id == message_id)).one()
    return row.provider, row.sender, row.route


def test_a_message_without_a_provider_goes_to_a_vendor_of_its_route_from_its_sender(
    producer: Producer, database: Database, catalog: Catalog, redis_client: redis.Redis
) -> None:
    message_id = producer.send(SendRequest("+12025550123", "hello"))
    vendor, sender, route = stored(database, message_id)
    choice = catalog.routes["default"].vendor(vendor)
    assert route == "default"
    assert choice is not None
    assert sender == choice.sender
    assert redis_client.llen(names.provider_queue(vendor)) == 1


def test_provider_auto_is_routed_as_if_left_out(producer: Producer, database: Database) -> None:
    message_id = producer.send(SendRequest("+12025550123", "hello", "auto"))
    assert stored(database, message_id)[2] == "default"


def test_a_message_that_names_its_vendor_has_no_route(
    producer: Producer, database: Database
) -> None:
    message_id = producer.send(SendRequest("+12025550123", "hello", "restcomm"))
    assert stored(database, message_id) == ("restcomm", "55555", None)


def test_a_routed_batch_splits_across_the_routes_vendors_by_weight(
    producer: Producer, database: Database
) -> None:
    result = producer.send_batch([SendRequest(f"+1202555{i:04d}", "hi") for i in range(800)])
    split = Counter(stored(database, i)[0] for i in result.ids.values())
    # The shipped default route: four vendors at 25 each.
    assert set(split) == {"cue", "messangi", "restcomm", "skycore"}
    assert all(120 < n < 280 for n in split.values()), split


def test_an_indian_number_is_routed_over_smsbuddy(producer: Producer, database: Database) -> None:
    message_id = producer.send(SendRequest("+919876543210", "hello"))
    assert stored(database, message_id) == ("smsbuddy", "SMSBDY", "india")


def test_a_routed_message_that_names_a_sender_is_refused_naming_the_sender(
    producer: Producer,
) -> None:
    with pytest.raises(InvalidMessage) as refused:
        producer.send(SendRequest("+12025550123", "hello", sender="CUESMS"))
    assert refused.value.field == "sender"


def test_a_vendor_without_its_url_is_never_chosen(
    database: Database, catalog: Catalog, celery: Celery
) -> None:
    settings = make_settings(skycore={**TEST_CREDENTIALS["skycore"], "base_url": ""})
    producer = Producer(settings, catalog, database, celery)
    result = producer.send_batch([SendRequest(f"+1202555{i:04d}", "hi") for i in range(200)])
    assert "skycore" not in {stored(database, i)[0] for i in result.ids.values()}


def test_a_vendor_without_its_credentials_is_never_chosen(
    database: Database, catalog: Catalog, celery: Celery
) -> None:
    settings = make_settings(cue={**TEST_CREDENTIALS["cue"], "password": ""})
    producer = Producer(settings, catalog, database, celery)
    result = producer.send_batch([SendRequest(f"+1202555{i:04d}", "hi") for i in range(200)])
    assert "cue" not in {stored(database, i)[0] for i in result.ids.values()}


def test_a_text_too_long_for_some_vendors_goes_to_one_that_takes_it(
    producer: Producer, database: Database
) -> None:
    text = "a" * 1200  # over Cue's and Skycore's 918, within Messangi's and Restcomm's 1600
    result = producer.send_batch([SendRequest(f"+1202555{i:04d}", text) for i in range(100)])
    assert {stored(database, i)[0] for i in result.ids.values()} == {"messangi", "restcomm"}


def test_a_text_no_vendor_of_the_route_takes_is_refused_saying_why(producer: Producer) -> None:
    with pytest.raises(InvalidMessage) as refused:
        producer.send(SendRequest("+919876543210", "a" * 1000))
    assert refused.value.field == "provider"
    assert "smsbuddy: takes at most 918 characters" in refused.value.reason


def test_a_route_none_of_whose_vendors_is_configured_refuses_naming_the_settings(
    database: Database, catalog: Catalog, celery: Celery
) -> None:
    settings = make_settings(smsbuddy={**TEST_CREDENTIALS["smsbuddy"], "key": ""})
    producer = Producer(settings, catalog, database, celery)
    with pytest.raises(InvalidMessage) as refused:
        producer.send(SendRequest("+919876543210", "hello"))
    assert "smsbuddy: SMSBUDDY__KEY not set" in refused.value.reason
