"""The opt-out list is checked where messages enter and again before sending."""

from __future__ import annotations

from sqlalchemy import select

from smsdispatch.campaigns.dispatcher import dispatch_campaigns
from smsdispatch.campaigns.service import Campaigns
from smsdispatch.local.simulators import SimulatorServer
from smsdispatch.producer.api import Producer
from smsdispatch.producer.validation import SendRequest
from smsdispatch.sending.pipeline import send_messages
from smsdispatch.store import optouts
from smsdispatch.store.models import messages
from smsdispatch.workers.runtime import Runtime
from tests.campaigns.conftest import campaign_with


def opt_out(rt: Runtime, *numbers: str) -> None:
    with rt.db.session() as session, session.begin():
        optouts.add(session, list(numbers), rt.clock(), "STOP")


def test_the_producer_rejects_an_opted_out_number_and_stores_the_rest(rt: Runtime) -> None:
    opt_out(rt, "+12125551002")
    producer = Producer(rt.settings, rt.catalog, rt.db, rt.celery, clock=rt.clock)
    result = producer.send_batch(
        [SendRequest("+12125551001", "hi", "cue"), SendRequest("+12125551002", "hi", "cue")]
    )
    assert list(result.ids) == [0]
    [rejection] = result.rejected
    assert (rejection.index, rejection.field) == (1, "to")
    assert "opted out" in rejection.reason


def test_a_number_that_opts_out_after_import_is_not_sent_to(
    rt: Runtime, service: Campaigns, simulators: SimulatorServer
) -> None:
    campaign_id = campaign_with(service, 3)
    service.start(campaign_id)
    dispatch_campaigns(rt)
    opt_out(rt, "+12125551001")

    with rt.db.session() as session:
        ids = list(session.scalars(select(messages.c.id).order_by(messages.c.id)))
    send_messages(rt, ids)

    with rt.db.session() as session:
        rows = session.execute(
            select(messages.c.recipient, messages.c.status, messages.c.error_code).order_by(
                messages.c.id
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("+12125551000", "accepted", None),
        ("+12125551001", "failed", "opted_out"),
        ("+12125551002", "accepted", None),
    ]
    # Cue takes numbers without the '+'.
    received = sorted(r.to for r in simulators["cue"].state.received)
    assert received == ["12125551000", "12125551002"]
