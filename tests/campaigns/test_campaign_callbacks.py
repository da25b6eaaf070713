"""A campaign's status callback goes onto each of its messages, and cancelling
the campaign tells each of them."""

from __future__ import annotations

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from smsdispatch.campaigns.service import CampaignError, Campaigns
from smsdispatch.store.models import messages, status_callbacks
from smsdispatch.workers.runtime import Runtime
from tests.campaigns.conftest import csv_of, spec
from tests.clock import FakeClock

HOOK = "http://127.0.0.1:9/campaign-hooks"


def service_signing(rt: Runtime, clock: FakeClock, **settings: object) -> Campaigns:
    update = {"callback_secret": SecretStr("s3cret"), **settings}
    signing = rt.settings.model_copy(update=update)
    return Campaigns(signing, rt.catalog, rt.db, clock=clock)


def test_a_campaigns_callback_is_on_each_message_and_cancelling_tells_each(
    rt: Runtime, clock: FakeClock
) -> None:
    service = service_signing(rt, clock, callback_allow_private=True)
    campaign_id = service.create(spec(status_callback=HOOK))
    service.import_csv(campaign_id, csv_of(3))
    service.cancel(campaign_id)
    with rt.db.session() as s:
        urls = set(s.scalars(select(messages.c.status_callback)))
        told = s.execute(select(status_callbacks.c.status, status_callbacks.c.url)).all()
    assert service.get(campaign_id)["status_callback"] == HOOK
    assert urls == {HOOK}
    assert [tuple(t) for t in told] == [("cancelled", HOOK)] * 3


def test_a_campaign_callback_to_a_private_address_is_refused_naming_the_field(
    rt: Runtime, clock: FakeClock
) -> None:
    service = service_signing(rt, clock)
    with pytest.raises(CampaignError) as refused:
        service.create(spec(status_callback=HOOK))
    assert refused.value.field == "status_callback"
    assert "loopback" in refused.value.reason
