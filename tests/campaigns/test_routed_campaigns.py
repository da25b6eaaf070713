"""Campaigns that name no vendor: each recipient's message is routed by its route."""

from __future__ import annotations

import inspect
import io
import math
import random
from collections import Counter
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
import redis
from sqlalchemy import select

from smsdispatch.campaigns.dispatcher import dispatch_campaigns
from smsdispatch.campaigns.importer import import_rows
from smsdispatch.campaigns.routing import expected_split
from smsdispatch.campaigns.service import CampaignError, Campaigns
from smsdispatch.config.catalog import Catalog
from smsdispatch.limits import pauses
from smsdispatch.local.catalogs import catalog_data
from smsdispatch.queueing.backlog import held_ids
from smsdispatch.routing.health import BreakerState
from smsdispatch.routing.router import Router, Snapshot, VendorState, pace_of, resting
from smsdispatch.sending.pipeline import send_messages
from smsdispatch.store import optouts
from smsdispatch.store.models import campaigns, messages
from smsdispatch.vocabulary import names
from smsdispatch.vocabulary.status import MessageStatus
from smsdispatch.workers.runtime import Runtime
from tests.campaigns.conftest import csv_of, spec
from tests.clock import FakeClock
from tests.settings import TEST_CREDENTIALS, make_settings

# A test catalog: two priced vendors of unequal weight by default (Cue takes
# at most 918 characters, Restcomm 1600), and India on SMSBuddy, unpriced.
CUE_WEIGHT, RESTCOMM_WEIGHT = 75, 25
IMPORT_CHUNK = inspect.signature(import_rows).parameters["chunk_size"].default
CUE_PRICE, RESTCOMM_PRICE = Decimal("0.0100"), Decimal("0.0200")


def routed_catalog(**extra: Any) -> Catalog:
    data = catalog_data()
    data["routes"] = {
        "default": {
            "destinations": ["default"],
            "vendors": [
                {
                    "vendor": "cue",
                    "sender": "CUESMS",
                    "weight": CUE_WEIGHT,
                    "price_per_segment": str(CUE_PRICE),
                },
                {
                    "vendor": "restcomm",
                    "sender": "55555",
                    "weight": RESTCOMM_WEIGHT,
                    "price_per_segment": str(RESTCOMM_PRICE),
                },
            ],
        },
        "india": {
            "destinations": ["IN"],
            "vendors": [{"vendor": "smsbuddy", "sender": "SMSBDY", "weight": 100}],
        },
    }
    data.update(extra)
    return Catalog.model_validate(data)


@pytest.fixture
def catalog_() -> Catalog:
    return routed_catalog()


@pytest.fixture
def router(catalog_: Catalog, redis_client: redis.Redis) -> Router:
    return Router(catalog_, redis_client, random.Random(11))


@pytest.fixture
def routed(rt: Runtime, clock: FakeClock, catalog_: Catalog, router: Router) -> Campaigns:
    rt.catalog = catalog_
    return Campaigns(rt.settings, catalog_, rt.db, clock=clock, router=router)


def auto(**overrides: Any) -> Any:
    return spec(**({"provider": None, "sender": None} | overrides))


def stored(service: Campaigns, campaign_id: int) -> list[Any]:
    m = messages.c
    with service.db.session() as session:
        return list(
            session.execute(
                select(m.recipient, m.provider, m.sender, m.route, m.segments).where(
                    m.campaign_id == campaign_id
                )
            )
        )


def csv_with(lines: list[str]) -> io.BytesIO:
    return io.BytesIO(("\n".join(["phone,name", *lines]) + "\n").encode())


def test_a_campaign_without_a_provider_is_stored_without_a_vendor_or_sender(
    routed: Campaigns,
) -> None:
    campaign_id = routed.create(auto())
    row = routed.get(campaign_id)
    assert (row["provider"], row["sender"]) == (None, None)


def test_provider_auto_makes_a_routed_campaign(routed: Campaigns) -> None:
    assert routed.get(routed.create(auto(provider="auto")))["provider"] is None


def test_a_routed_campaign_refuses_a_sender_of_its_own(routed: Campaigns) -> None:
    with pytest.raises(CampaignError) as caught:
        routed.create(spec(provider=None, sender="CUESMS"))
    assert caught.value.field == "sender"


def test_each_message_of_a_routed_campaign_gets_its_route_a_vendor_of_it_and_its_sender(
    routed: Campaigns, catalog_: Catalog
) -> None:
    campaign_id = routed.create(auto())
    routed.import_csv(campaign_id, csv_with(["+12125551001,Ana", "+919876543210,Raj"]))
    rows = {r.recipient: r for r in stored(routed, campaign_id)}
    for recipient, row in rows.items():
        route = catalog_.route_table.route_for(recipient)
        choice = route.vendor(row.provider)
        assert row.route == route.name
        assert choice is not None
        assert row.sender == choice.sender
    assert rows["+919876543210"].provider == "smsbuddy"


def test_a_routed_campaign_splits_its_recipients_by_the_routes_weights(
    routed: Campaigns,
) -> None:
    # 200 messages: less than 2 s of either vendor's 100/s, so no spill-over.
    campaign_id = routed.create(auto())
    routed.import_csv(campaign_id, csv_of(200))
    split = Counter(r.provider for r in stored(routed, campaign_id))
    expected = CUE_WEIGHT / (CUE_WEIGHT + RESTCOMM_WEIGHT)
    assert set(split) == {"cue", "restcomm"}
    assert abs(split["cue"] / 200 - expected) < 0.08, split


def test_a_routed_campaign_larger_than_two_seconds_of_a_vendor_spills_to_the_others(
    routed: Campaigns,
) -> None:
    # 800 messages at 100/s each: by weight Cue would take 600 (6 s), Restcomm
    # 200 (2 s); spill-over fills both, so the campaign takes about 4 s.
    campaign_id = routed.create(auto())
    routed.import_csv(campaign_id, csv_of(800))
    split = Counter(r.provider for r in stored(routed, campaign_id))
    assert 360 <= split["restcomm"] <= 440, split


def test_a_rendered_text_too_long_for_one_vendor_goes_to_the_others(
    routed: Campaigns, catalog_: Catalog
) -> None:
    campaign_id = routed.create(auto())
    long_name = "x" * (catalog_.get("cue").max_text_chars + 1)
    lines = [f"+1212555{1000 + i:04d},{long_name}" for i in range(40)]
    result = routed.import_csv(campaign_id, csv_with([*lines, "+12125559999,Ana"]))
    assert result.imported == 41
    long_ones = {r.provider for r in stored(routed, campaign_id) if r.recipient != "+12125559999"}
    assert long_ones == {"restcomm"}


def test_a_text_no_vendor_of_the_route_can_carry_is_rejected_saying_why(
    routed: Campaigns, catalog_: Catalog
) -> None:
    campaign_id = routed.create(auto())
    too_long = "x" * (catalog_.get("restcomm").max_text_chars + 1)
    result = routed.import_csv(campaign_id, csv_with([f"+12125551001,{too_long}"]))
    assert result.imported == 0
    assert "no vendor of route 'default' can carry it" in result.first_rejections[0].reason


def test_a_routed_campaign_still_skips_opted_out_numbers(routed: Campaigns) -> None:
    with routed.db.session() as session, session.begin():
        optouts.add(session, ["+12125551001"], routed.clock(), "STOP")
    campaign_id = routed.create(auto())
    result = routed.import_csv(campaign_id, csv_with(["+12125551001,Ana", "+12125551002,Bo"]))
    assert (result.imported, result.opted_out) == (1, 1)


def test_a_routed_import_takes_one_routing_snapshot_per_chunk(
    routed: Campaigns, router: Router, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken: list[datetime] = []
    real = router.snapshot

    def counted(now: datetime) -> Snapshot:
        taken.append(now)
        return real(now)

    monkeypatch.setattr(router, "snapshot", counted)
    campaign_id = routed.create(auto())
    result = routed.import_csv(campaign_id, csv_of(9_000))
    assert result.imported == 9_000
    assert len(taken) == math.ceil(9_000 / IMPORT_CHUNK)


def test_a_paused_vendor_gets_none_of_a_routed_campaign(
    routed: Campaigns, redis_client: redis.Redis
) -> None:
    pauses.pause(redis_client, "cue", 60, "bad key")
    campaign_id = routed.create(auto())
    routed.import_csv(campaign_id, csv_of(50))
    assert {r.provider for r in stored(routed, campaign_id)} == {"restcomm"}


# -- dispatching ----------------------------------------------------------------


def test_a_routed_campaign_is_released_to_each_chosen_vendors_queue(
    rt: Runtime, routed: Campaigns, redis_client: redis.Redis
) -> None:
    campaign_id = routed.create(auto())
    routed.import_csv(campaign_id, csv_of(40))
    routed.start(campaign_id)
    released = dispatch_campaigns(rt).released
    m = messages.c
    with routed.db.session() as session:
        by_vendor: dict[str, set[int]] = {}
        for message_id, vendor in session.execute(
            select(m.id, m.provider).where(m.campaign_id == campaign_id)
        ):
            by_vendor.setdefault(vendor, set()).add(message_id)
    assert released == {campaign_id: 40}
    assert len(by_vendor) == 2
    for vendor, ids in by_vendor.items():
        assert set(held_ids(redis_client, [names.provider_queue(vendor)])) == ids


def test_quiet_hours_of_one_vendor_release_its_share_of_a_routed_campaign_to_move_on(
    rt: Runtime, clock: FakeClock, router: Router
) -> None:
    quiet = {"start": "11:00", "end": "13:00", "timezone": "UTC", "hold_before_sending": True}
    base = routed_catalog()
    data = base.model_dump(mode="json")
    data["providers"]["cue"]["quiet_hours"] = quiet
    rt.catalog = Catalog.model_validate(data)
    service = Campaigns(rt.settings, rt.catalog, rt.db, clock=clock, router=router)
    campaign_id = service.create(auto())
    service.import_csv(campaign_id, csv_of(40))
    service.start(campaign_id)
    dispatch_campaigns(rt)
    m = messages.c
    with rt.db.session() as session:
        statuses = Counter(
            session.execute(select(m.provider, m.status).where(m.campaign_id == campaign_id)).all()
        )
    # Released all the same: Cue's workers move them to Restcomm (failover),
    # where a named campaign's would wait for Cue to open.
    assert {status for (_, status) in statuses} == {MessageStatus.QUEUED}
    cue_ids = held_or_queued_ids(rt, campaign_id, "cue")
    assert cue_ids
    send_messages(rt, cue_ids)
    with rt.db.session() as session:
        moved = set(
            session.scalars(select(m.provider).where(m.id.in_(cue_ids), m.status == "queued"))
        )
    assert moved == {"restcomm"}


def held_or_queued_ids(rt: Runtime, campaign_id: int, provider: str) -> list[int]:
    m = messages.c
    with rt.db.session() as session:
        return list(
            session.scalars(
                select(m.id).where(m.campaign_id == campaign_id, m.provider == provider)
            )
        )


# -- the preview ------------------------------------------------------------------


def test_the_preview_of_a_routed_campaign_shows_the_expected_split_and_cost(
    routed: Campaigns,
) -> None:
    campaign_id = routed.create(auto())
    routed.import_csv(campaign_id, csv_of(100))
    preview = routed.preview(campaign_id)
    by_vendor = {v.vendor: v for v in preview.vendors}
    total = CUE_WEIGHT + RESTCOMM_WEIGHT
    assert preview.routed
    assert by_vendor["cue"].messages == pytest.approx(100 * CUE_WEIGHT / total)
    assert by_vendor["restcomm"].segments == pytest.approx(100 * RESTCOMM_WEIGHT / total)
    assert by_vendor["cue"].cost == 100 * CUE_WEIGHT * CUE_PRICE / total
    assert by_vendor["restcomm"].cost == 100 * RESTCOMM_WEIGHT * RESTCOMM_PRICE / total


def test_the_preview_of_a_large_routed_campaign_expects_the_spill_over_its_import_made(
    routed: Campaigns,
) -> None:
    campaign_id = routed.create(auto())
    routed.import_csv(campaign_id, csv_of(800))
    stored_split = Counter(r.provider for r in stored(routed, campaign_id))
    by_vendor = {v.vendor: v.messages for v in routed.preview(campaign_id).vendors}
    # Cue 600 by weight alone: past 2 s of its 100/s the rest shares by rate.
    assert by_vendor["cue"] == pytest.approx(400)
    assert abs(stored_split["cue"] - by_vendor["cue"]) <= 40


def test_the_preview_counts_only_the_vendors_that_can_take_a_message_now(
    routed: Campaigns, redis_client: redis.Redis
) -> None:
    campaign_id = routed.create(auto())
    routed.import_csv(campaign_id, csv_of(100))
    pauses.pause(redis_client, "cue", 60, "bad key")
    by_vendor = {v.vendor: v for v in routed.preview(campaign_id).vendors}
    assert set(by_vendor) == {"restcomm"}
    assert by_vendor["restcomm"].cost == 100 * RESTCOMM_PRICE


def test_the_preview_sends_a_text_too_long_for_one_vendor_to_the_others(
    routed: Campaigns, catalog_: Catalog
) -> None:
    campaign_id = routed.create(auto())
    long_name = "x" * (catalog_.get("cue").max_text_chars + 1)
    routed.import_csv(campaign_id, csv_with([f"+12125551001,{long_name}"]))
    (only,) = routed.preview(campaign_id).vendors
    segments = stored(routed, campaign_id)[0].segments
    assert (only.vendor, only.messages, only.segments) == ("restcomm", 1, segments)
    assert only.cost == segments * RESTCOMM_PRICE


def test_the_preview_says_no_price_where_the_catalog_gives_none(routed: Campaigns) -> None:
    campaign_id = routed.create(auto())
    routed.import_csv(campaign_id, csv_with(["+919876543210,Raj"]))
    (only,) = routed.preview(campaign_id).vendors
    assert (only.vendor, only.cost, only.unpriced_segments) == ("smsbuddy", None, 1)


def test_the_preview_of_a_named_campaign_prices_its_vendor_on_each_numbers_route(
    rt: Runtime, clock: FakeClock, catalog_: Catalog, router: Router
) -> None:
    service = Campaigns(rt.settings, catalog_, rt.db, clock=clock, router=router)
    campaign_id = service.create(spec(provider="cue", sender="CUESMS"))
    service.import_csv(campaign_id, csv_of(30))
    (only,) = service.preview(campaign_id).vendors
    assert (only.vendor, only.messages) == ("cue", 30)
    assert only.cost == 30 * CUE_PRICE


def test_a_named_campaigns_vendor_outside_the_numbers_route_has_no_price(
    rt: Runtime, clock: FakeClock, catalog_: Catalog, router: Router
) -> None:
    service = Campaigns(rt.settings, catalog_, rt.db, clock=clock, router=router)
    campaign_id = service.create(spec(provider="messangi", sender="12345"))
    service.import_csv(campaign_id, csv_of(3))
    (only,) = service.preview(campaign_id).vendors
    assert (only.vendor, only.cost, only.unpriced_segments) == ("messangi", None, 3)


def test_live_vendor_counts_give_a_routed_campaigns_split(routed: Campaigns) -> None:
    campaign_id = routed.create(auto())
    routed.import_csv(campaign_id, csv_of(60))
    counts = routed.live_vendor_counts(campaign_id)
    assert counts == dict(Counter(r.provider for r in stored(routed, campaign_id)))
    assert sum(counts.values()) == 60


def test_the_campaigns_table_keeps_a_named_campaigns_vendor(routed: Campaigns) -> None:
    campaign_id = routed.create(spec())
    with routed.db.session() as session:
        row = session.execute(
            select(campaigns.c.provider, campaigns.c.sender).where(campaigns.c.id == campaign_id)
        ).one()
    assert tuple(row) == ("cue", "CUESMS")


def test_the_expected_split_of_a_vendor_booked_ahead_goes_first_to_the_others(
    catalog_: Catalog,
) -> None:
    route = catalog_.routes["default"]
    snapshot = resting(catalog_.routes.values(), random.Random(1), pace_of(catalog_, [route]))
    snapshot.vendors["cue"] = VendorState(False, BreakerState.CLOSED, backlog_seconds=3.0)
    # Restcomm (100/s) takes 300 messages before it is 3 s ahead as well.
    assert expected_split(snapshot, route, lambda _: True, 300) == {"restcomm": 1.0}
    # The next 200 share 50/50: both vendors are then booked alike.
    assert expected_split(snapshot, route, lambda _: True, 200) == pytest.approx(
        {"cue": 0.5, "restcomm": 0.5}
    )


def test_a_routed_campaign_is_refused_when_no_route_vendor_is_set_up(
    rt: Runtime, clock: FakeClock, catalog_: Catalog, router: Router
) -> None:
    bare = {v: {**TEST_CREDENTIALS[v], "base_url": ""} for v in TEST_CREDENTIALS}
    settings = make_settings(database_url=rt.settings.database_url, **bare)
    service = Campaigns(settings, catalog_, rt.db, clock=clock, router=router)
    with pytest.raises(CampaignError) as refused:
        service.create(auto())
    assert refused.value.field == "provider"
    assert "BASE_URL" in str(refused.value)
