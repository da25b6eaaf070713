"""The dispatcher with the clock faked: when campaigns start and end, how much
it releases, and what pausing, resuming and cancelling do to released messages."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis
from sqlalchemy import func, select, update

from smsdispatch.campaigns.dispatcher import dispatch_campaigns
from smsdispatch.campaigns.service import (
    CampaignConflict,
    CampaignNotReady,
    Campaigns,
)
from smsdispatch.config.catalog import Catalog
from smsdispatch.limits import pauses
from smsdispatch.local.catalogs import catalog_data
from smsdispatch.queueing.backlog import held_ids
from smsdispatch.store.models import messages
from smsdispatch.vocabulary import keys
from smsdispatch.vocabulary.status import CampaignStatus, MessageStatus
from smsdispatch.workers.runtime import Runtime
from tests.campaigns.conftest import NOON, campaign_with, spec
from tests.clock import FakeClock

CUE_RATE = 100  # per second, the catalog's Cue account limit
HORIZON = 10  # seconds: the default campaign_backlog_seconds


def by_status(rt: Runtime, campaign_id: int) -> dict[str, int]:
    m = messages.c
    with rt.db.session() as session:
        rows = session.execute(
            select(m.status, func.count()).where(m.campaign_id == campaign_id).group_by(m.status)
        )
        return {s: n for s, n in rows}


def send_released(rt: Runtime, campaign_id: int, how_many: int | None = None) -> None:
    """What workers would do: released messages become accepted."""
    m = messages.c
    ids = select(m.id).where(m.campaign_id == campaign_id, m.status == MessageStatus.QUEUED)
    if how_many is not None:
        ids = ids.order_by(m.id).limit(how_many)
    with rt.db.session() as session, session.begin():
        session.execute(
            update(messages)
            .where(m.id.in_(ids.scalar_subquery()))
            .values(status=MessageStatus.ACCEPTED)
        )


def test_a_scheduled_campaign_does_not_start_early_and_starts_when_due(
    rt: Runtime, service: Campaigns, clock: FakeClock
) -> None:
    campaign_id = campaign_with(service, 20)
    service.schedule(campaign_id, start_at=NOON + timedelta(hours=2))

    clock.advance(2 * 3600 - 1)
    early = dispatch_campaigns(rt)
    assert early.started == []
    assert service.get(campaign_id)["status"] == CampaignStatus.SCHEDULED
    assert by_status(rt, campaign_id) == {"held": 20}

    clock.advance(1)
    due = dispatch_campaigns(rt)
    assert due.started == [campaign_id]
    assert due.released == {campaign_id: 20}
    assert by_status(rt, campaign_id) == {"queued": 20}


def test_the_end_time_expires_what_is_left_and_completes_the_campaign(
    rt: Runtime, service: Campaigns, clock: FakeClock
) -> None:
    campaign_id = campaign_with(service, 1500)
    service.schedule(campaign_id, start_at=NOON, end_at=NOON + timedelta(minutes=30))
    dispatch_campaigns(rt)
    send_released(rt, campaign_id)

    clock.advance(30 * 60)
    result = dispatch_campaigns(rt)

    assert result.ended == [campaign_id]
    assert by_status(rt, campaign_id) == {"accepted": 1000, "expired": 500}
    campaign = service.get(campaign_id)
    assert campaign["status"] == CampaignStatus.COMPLETED
    assert campaign["counts"] == {"accepted": 1000, "expired": 500}


def test_the_backlog_is_the_vendors_rate_over_the_horizon_and_is_topped_up(
    rt: Runtime, service: Campaigns, redis_client: redis.Redis
) -> None:
    campaign_id = campaign_with(service, 3000)
    service.start(campaign_id)

    assert dispatch_campaigns(rt).released == {campaign_id: CUE_RATE * HORIZON}
    assert dispatch_campaigns(rt).released == {}  # full: nothing more
    assert len(held_ids(redis_client, ["sms.cue"])) == CUE_RATE * HORIZON

    send_released(rt, campaign_id, how_many=300)
    assert dispatch_campaigns(rt).released == {campaign_id: 300}
    assert by_status(rt, campaign_id) == {"accepted": 300, "queued": 1000, "held": 1700}


def test_a_long_code_campaign_keeps_only_the_senders_pace_released(
    rt: Runtime, service: Campaigns
) -> None:
    campaign_id = campaign_with(service, 100, sender="27821230000")  # 1 a second
    service.start(campaign_id)
    assert dispatch_campaigns(rt).released == {campaign_id: 1 * HORIZON}


def test_campaigns_on_one_vendor_share_its_backlog(rt: Runtime, service: Campaigns) -> None:
    first = campaign_with(service, 2000)
    second = campaign_with(service, 2000, name="second")
    service.start(first)
    service.start(second)
    assert dispatch_campaigns(rt).released == {first: 500, second: 500}


def test_pause_takes_back_released_messages_and_resume_releases_them_again(
    rt: Runtime, service: Campaigns, redis_client: redis.Redis
) -> None:
    campaign_id = campaign_with(service, 2000)
    service.start(campaign_id)
    dispatch_campaigns(rt)

    assert service.pause(campaign_id) == 1000
    assert dispatch_campaigns(rt).released == {}
    assert by_status(rt, campaign_id) == {"held": 2000}

    service.resume(campaign_id)
    assert dispatch_campaigns(rt).released == {campaign_id: 1000}
    # The old tasks are still on the broker; their ids are claimable again
    # only because they were released again, so each is sent once.
    ids = held_ids(redis_client, ["sms.cue"])
    assert len(ids) == 2000
    assert len(set(ids)) == 1000


def test_cancel_marks_every_unsent_message_cancelled(rt: Runtime, service: Campaigns) -> None:
    campaign_id = campaign_with(service, 1500)
    service.start(campaign_id)
    dispatch_campaigns(rt)
    send_released(rt, campaign_id, how_many=400)

    assert service.cancel(campaign_id) == 1100
    assert by_status(rt, campaign_id) == {"accepted": 400, "cancelled": 1100}
    assert service.get(campaign_id)["status"] == CampaignStatus.CANCELLED
    assert dispatch_campaigns(rt).released == {}


def test_a_campaign_completes_when_nothing_is_left_and_its_counters_match_the_rows(
    rt: Runtime, service: Campaigns
) -> None:
    campaign_id = campaign_with(service, 1200)
    service.start(campaign_id)
    for _ in range(2):  # 1000, then the last 200
        dispatch_campaigns(rt)
        send_released(rt, campaign_id)
    result = dispatch_campaigns(rt)

    assert result.completed == [campaign_id]
    campaign = service.get(campaign_id)
    assert campaign["status"] == CampaignStatus.COMPLETED
    assert campaign["counts"] == by_status(rt, campaign_id) == {"accepted": 1200}


def test_a_paused_vendor_gets_no_releases(rt: Runtime, service: Campaigns) -> None:
    campaign_id = campaign_with(service, 10)
    service.start(campaign_id)
    pauses.pause(rt.redis, "cue", 60, "no credit")
    assert dispatch_campaigns(rt).released == {}


def test_declared_quiet_hours_hold_releases_until_they_end(
    rt: Runtime, service: Campaigns, clock: FakeClock
) -> None:
    quiet = {"start": "11:00", "end": "13:00", "timezone": "UTC", "hold_before_sending": True}
    rt.catalog = Catalog.model_validate(
        catalog_data({"providers": {"cue": {"quiet_hours": quiet}}})
    )
    campaign_id = campaign_with(service, 10)
    service.start(campaign_id)
    assert dispatch_campaigns(rt).released == {}
    clock.advance(3600)
    assert dispatch_campaigns(rt).released == {campaign_id: 10}


def test_an_action_that_does_not_apply_names_the_current_status(service: Campaigns) -> None:
    campaign_id = campaign_with(service, 3)
    with pytest.raises(
        CampaignConflict, match=f"campaign {campaign_id} is draft; resume applies to"
    ) as raised:
        service.resume(campaign_id)
    assert (raised.value.status, raised.value.action) == (CampaignStatus.DRAFT, "resume")
    assert raised.value.allowed == {CampaignStatus.PAUSED}


def test_scheduling_needs_a_start_time_and_recipients(service: Campaigns) -> None:
    empty = service.create(spec())
    with pytest.raises(CampaignNotReady, match="needs a start time"):
        service.schedule(empty)
    with pytest.raises(CampaignNotReady, match="no recipients"):
        service.schedule(empty, start_at=NOON)


def test_resuming_before_the_start_time_returns_to_scheduled(
    rt: Runtime, service: Campaigns
) -> None:
    campaign_id = campaign_with(service, 3)
    service.schedule(campaign_id, start_at=NOON + timedelta(days=1))
    service.pause(campaign_id)
    service.resume(campaign_id)
    assert service.get(campaign_id)["status"] == CampaignStatus.SCHEDULED


def test_a_finished_campaigns_counters_follow_delivery_reports_for_a_day(
    rt: Runtime, service: Campaigns, clock: FakeClock
) -> None:
    campaign_id = campaign_with(service, 10)
    service.start(campaign_id)
    dispatch_campaigns(rt)
    send_released(rt, campaign_id)
    dispatch_campaigns(rt)  # completes
    with rt.db.session() as session, session.begin():
        session.execute(
            update(messages)
            .where(messages.c.campaign_id == campaign_id)
            .values(status=MessageStatus.DELIVERED)
        )

    clock.advance(rt.settings.campaign_counts_interval_seconds)
    dispatch_campaigns(rt)
    assert service.get(campaign_id)["counts"] == {"delivered": 10}

    with rt.db.session() as session, session.begin():
        session.execute(
            update(messages)
            .where(messages.c.campaign_id == campaign_id)
            .values(status=MessageStatus.UNDELIVERED)
        )
    clock.advance(rt.settings.campaign_counts_after_seconds + 1)
    dispatch_campaigns(rt)
    assert service.get(campaign_id)["counts"] == {"delivered": 10}  # no longer followed


def test_a_run_is_skipped_while_another_holds_the_dispatch_lock(
    rt: Runtime, service: Campaigns, redis_client: redis.Redis
) -> None:
    campaign_id = campaign_with(service, 10)
    service.start(campaign_id)
    redis_client.set(keys.DISPATCH_LOCK, "another run")
    assert dispatch_campaigns(rt).released == {}
    redis_client.delete(keys.DISPATCH_LOCK)
    assert dispatch_campaigns(rt).released == {campaign_id: 10}
    assert redis_client.get(keys.DISPATCH_LOCK) is None  # released after the run
