"""Reconciliation by polling: messages whose reports never came become final."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis
from sqlalchemy import select

from smsdispatch.config.catalog import Catalog
from smsdispatch.config.settings import Settings
from smsdispatch.local.simulators import SimulatorServer
from smsdispatch.producer.api import Producer
from smsdispatch.producer.validation import SendRequest
from smsdispatch.providers import cue, messangi, restcomm, skycore, smsbuddy
from smsdispatch.providers.reports import ReportTable
from smsdispatch.reports.reconcile import reconcile_messages
from smsdispatch.routing.delivery import DeliveryBoard
from smsdispatch.sending.pipeline import send_messages
from smsdispatch.simulators.common import ReportMix
from smsdispatch.store.models import delivery_reports, messages
from smsdispatch.store.reports import Applied, apply_report
from smsdispatch.vocabulary.delivery import DeliveryReport
from smsdispatch.vocabulary.status import MessageStatus
from smsdispatch.workers.app import create_app
from smsdispatch.workers.runtime import Runtime

POLLABLE = ("restcomm", "smsbuddy")
REPORT_TABLES: dict[str, ReportTable] = {
    m.__name__.rsplit(".", 1)[1]: m.REPORT_STATUSES
    for m in (cue, messangi, restcomm, skycore, smsbuddy)
}
MIX = ReportMix(delivered=2, undelivered=1, expired=1)


@pytest.fixture
def rt(
    settings: Settings, database_url: str, catalog: Catalog, redis_client: redis.Redis
) -> Iterator[Runtime]:
    settings = settings.model_copy(
        update={
            "database_url": database_url,
            "reconcile_after_seconds": 0.0,
            "reconcile_rate_per_second": 100.0,
        }
    )
    runtime = Runtime(settings, catalog, create_app(settings))
    yield runtime
    runtime.close()


def send(rt: Runtime, vendors: tuple[str, ...], count: int) -> list[int]:
    producer = Producer(rt.settings, rt.catalog, rt.db, rt.celery, clock=rt.clock)
    result = producer.send_batch(
        [
            SendRequest(f"+91981234{i:04d}", f"message {i}", vendors[i % len(vendors)])
            for i in range(count)
        ]
    )
    ids = list(result.ids.values())
    send_messages(rt, ids)
    return ids


def rows(rt: Runtime, ids: list[int]) -> dict[int, tuple[str, str, str | None]]:
    m = messages.c
    with rt.db.session() as s:
        result = s.execute(select(m.id, m.provider, m.status, m.tracking_id).where(m.id.in_(ids)))
        return {r.id: (r.provider, r.status, r.tracking_id) for r in result}


def expected(simulators: SimulatorServer, provider: str, tracking_id: str) -> str:
    """The status the vendor's word for the message's fate means, by its own table."""
    fate = simulators[provider].state.fates[tracking_id]
    return REPORT_TABLES[provider][fate.word.casefold() if provider == "skycore" else fate.word]


def test_polling_settles_messages_whose_reports_never_came(
    rt: Runtime, simulators: SimulatorServer
) -> None:
    for vendor in POLLABLE:
        control = simulators[vendor].state.control
        control.reports, control.report_delay_seconds, control.report_mix = False, 0.3, MIX
    ids = send(rt, POLLABLE, 40)
    before = rows(rt, ids)
    assert {status for _, status, _ in before.values()} == {"accepted"}

    time.sleep(0.4)  # the network has settled every message; no report was sent
    result = reconcile_messages(rt)

    assert result.asked == 40
    after = rows(rt, ids)
    for mid, (provider, status, tracking_id) in after.items():
        assert tracking_id is not None
        assert status == expected(simulators, provider, tracking_id), mid
    assert {status for _, status, _ in after.values()} >= {"delivered", "undelivered"}


def test_polling_before_the_network_settles_keeps_accepted_and_asks_again_later(
    rt: Runtime, simulators: SimulatorServer
) -> None:
    simulators["restcomm"].state.control.report_delay_seconds = 3600.0
    ids = send(rt, ("restcomm",), 5)

    first = reconcile_messages(rt)
    assert first.asked == 5
    assert {status for _, status, _ in rows(rt, ids).values()} == {"accepted"}
    with rt.db.session() as s:
        words = set(s.scalars(select(messages.c.vendor_status).where(messages.c.id.in_(ids))))
        polls = s.scalars(select(delivery_reports.c.source)).all()
    assert words == {"sent"}
    assert polls == ["poll"] * 5

    rt.settings = rt.settings.model_copy(update={"reconcile_after_seconds": 3600.0})
    assert reconcile_messages(rt).asked == 0  # asked recently: not again yet


def test_vendors_without_a_status_query_are_not_polled(
    rt: Runtime, simulators: SimulatorServer
) -> None:
    send(rt, ("cue", "skycore", "messangi"), 6)
    assert reconcile_messages(rt).asked == 0


def test_an_unknown_restcomm_message_without_a_sid_is_found_by_the_list_query(
    settings: Settings,
    database_url: str,
    catalog: Catalog,
    redis_client: redis.Redis,
    simulators: SimulatorServer,
) -> None:
    settings = settings.model_copy(
        update={
            "database_url": database_url,
            "reconcile_after_seconds": 0.0,
            "lost_send_search_after_seconds": 0.0,
            "http_read_timeout_seconds": 0.5,
        }
    )
    rt = Runtime(settings, catalog, create_app(settings))
    try:
        control = simulators["restcomm"].state.control
        control.report_delay_seconds, control.report_mix = 0.2, ReportMix(delivered=0, expired=1)
        control.hang_next, control.hang_seconds = 1, 1.5  # Restcomm took it; the answer is lost
        [mid] = send(rt, ("restcomm",), 1)
        assert rows(rt, [mid])[mid][1:] == ("unknown", None)

        time.sleep(0.3)
        result = reconcile_messages(rt)

        [sent] = simulators["restcomm"].state.received
        assert result.results == {"applied": 1}
        assert rows(rt, [mid])[mid] == ("restcomm", "failed", sent.tracking_id)
    finally:
        rt.close()


@pytest.fixture
def runtime_with(
    settings: Settings, database_url: str, catalog: Catalog, redis_client: redis.Redis
) -> Iterator[Callable[..., Runtime]]:
    made: list[Runtime] = []

    def make(**overrides: object) -> Runtime:
        changed = settings.model_copy(update={"database_url": database_url, **overrides})
        made.append(Runtime(changed, catalog, create_app(changed)))
        return made[-1]

    yield make
    for runtime in made:
        runtime.close()


def lost_send(rt: Runtime, *, claimed_ago: float, given_up_ago: float) -> int:
    """A Restcomm message whose answer nobody kept: its worker claimed it and
    died (smsdispatch.store.outbox.reclaim made it `unknown`), or its request timed out."""
    producer = Producer(rt.settings, rt.catalog, rt.db, rt.celery, clock=rt.clock)
    mid = producer.send(SendRequest("+919812340001", "lost on the way", "restcomm"))
    now = rt.clock()
    with rt.db.session() as s, s.begin():
        s.execute(
            messages.update()
            .where(messages.c.id == mid)
            .values(
                status="unknown",
                attempts=1,
                claimed_at=now - timedelta(seconds=claimed_ago),
                sent_at=now - timedelta(seconds=given_up_ago),
            )
        )
    return mid


def test_an_unknown_restcomm_message_the_vendor_never_took_is_sent_again(
    runtime_with: Callable[..., Runtime], simulators: SimulatorServer
) -> None:
    rt = runtime_with(lost_send_search_after_seconds=5.0)
    mid = lost_send(rt, claimed_ago=130, given_up_ago=6)

    result = reconcile_messages(rt)
    assert (result.results, result.resent) == ({"not_found": 1}, 1)
    assert rows(rt, [mid])[mid][1] == "queued"
    send_messages(rt, [mid])

    assert rows(rt, [mid])[mid][1] == "accepted"
    assert len(simulators["restcomm"].state.received) == 1


def test_a_lost_send_is_not_looked_for_before_the_vendor_could_list_it(
    runtime_with: Callable[..., Runtime], simulators: SimulatorServer
) -> None:
    rt = runtime_with(lost_send_search_after_seconds=60.0)
    mid = lost_send(rt, claimed_ago=0, given_up_ago=0)

    assert reconcile_messages(rt).asked == 0
    assert rows(rt, [mid])[mid][1] == "unknown"


def test_a_report_that_came_before_its_send_was_recorded_is_applied_later(
    rt: Runtime, simulators: SimulatorServer
) -> None:
    simulators["skycore"].state.control.reports = False
    [message_id] = send(rt, ("skycore",), 1)
    with rt.db.session() as s:
        tracking_id = s.scalar(select(messages.c.tracking_id).where(messages.c.id == message_id))
    early = DeliveryReport(MessageStatus.DELIVERED, "delivered", tracking_id="not-yet-x")
    # As the webhook would have stored it: its id matched no message then.
    late = DeliveryReport(MessageStatus.DELIVERED, "delivered", tracking_id=tracking_id)
    with rt.db.session() as s, s.begin():
        assert apply_report(s, "skycore", early, datetime.now(UTC)) is Applied.UNMATCHED
        s.execute(messages.update().where(messages.c.id == message_id).values(tracking_id=None))
        assert apply_report(s, "skycore", late, datetime.now(UTC)) is Applied.UNMATCHED
        s.execute(
            messages.update().where(messages.c.id == message_id).values(tracking_id=tracking_id)
        )

    reconcile_messages(rt)

    assert rows(rt, [message_id])[message_id][1] == "delivered"
    with rt.db.session() as s:
        outcomes = dict(
            s.execute(select(delivery_reports.c.tracking_id, delivery_reports.c.outcome)).all()
        )
    assert outcomes == {"not-yet-x": "unmatched", tracking_id: "applied"}


def test_status_query_answers_count_once_in_the_vendors_delivery_figures(
    rt: Runtime, simulators: SimulatorServer, redis_client: redis.Redis
) -> None:
    for vendor in POLLABLE:
        control = simulators[vendor].state.control
        control.reports, control.report_delay_seconds, control.report_mix = False, 0.3, MIX
    ids = send(rt, POLLABLE, 20)
    time.sleep(0.4)  # the network has settled every message; no report was sent
    reconcile_messages(rt)
    reconcile_messages(rt)  # nothing is asked twice, nor counted twice
    with rt.db.session() as s:
        final = Counter(
            s.execute(
                select(messages.c.provider).where(
                    messages.c.id.in_(ids), messages.c.final_at.is_not(None)
                )
            ).scalars()
        )
    figures = DeliveryBoard(redis_client, rt.catalog.delivery).figures(POLLABLE)
    assert {v: figures[v].reports for v in POLLABLE} == {v: final[v] for v in POLLABLE}
    assert sum(final.values()) == 20
