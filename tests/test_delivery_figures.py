"""Delivery figures per vendor from its final reports, shared through Redis, feeding routing."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from prometheus_client import CollectorRegistry, generate_latest
from rich.console import Console
from sqlalchemy import select

from smsdispatch.config.catalog import Catalog, load_catalog
from smsdispatch.config.routes import DeliveryPolicy
from smsdispatch.config.settings import DEFAULT_CATALOG, Settings
from smsdispatch.reports.intake import ReportIntake
from smsdispatch.routing.delivery import DeliveryBoard, time_class
from smsdispatch.routing.metrics import RoutingCollector
from smsdispatch.routing.router import Router
from smsdispatch.routing.view import route_rows, routes_table
from smsdispatch.routing.weights import WeightBoard, rebalance_routes
from smsdispatch.sending.pipeline import persist
from smsdispatch.sending.transitions import result_of
from smsdispatch.store.db import Database
from smsdispatch.store.models import messages
from smsdispatch.store.outbox import claim, new_claim_token
from smsdispatch.store.reports import Applied, Final, apply_reports
from smsdispatch.vocabulary import keys
from smsdispatch.vocabulary.delivery import DeliveryReport
from smsdispatch.vocabulary.outcomes import Outcome
from smsdispatch.vocabulary.status import MessageStatus
from tests.clock import FakeClock, runtime
from tests.settings import make_settings, unreachable_redis
from tests.test_outbox import add_rows
from tests.test_route_metrics import samples

S = MessageStatus
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
CATALOG = load_catalog(DEFAULT_CATALOG)
POLICY = DeliveryPolicy(min_reports=4)


def report(
    status: MessageStatus, tracking_id: str, vendor_at: datetime | None = None
) -> DeliveryReport:
    return DeliveryReport(
        status, status.value, tracking_id=tracking_id, raw=status.value, vendor_at=vendor_at
    )


def sent(db: Database, tracking_id: str, seconds_ago: float, *, now: datetime = NOW) -> int:
    [mid] = add_rows(
        db,
        1,
        provider="restcomm",
        status="accepted",
        tracking_id=tracking_id,
        sent_at=now - timedelta(seconds=seconds_ago),
    )
    return mid


def applied(db: Database, *reports: DeliveryReport) -> tuple[list[Applied], list[Final]]:
    finals: list[Final] = []
    with db.session() as s, s.begin():
        outcomes = apply_reports(s, [("restcomm", r) for r in reports], NOW, finals=finals)
    return outcomes, finals


def finals(vendor: str, *seconds: float | None) -> list[Final]:
    """Delivered messages that took these seconds (None: not delivered)."""
    return [
        Final(vendor, S.UNDELIVERED, None) if s is None else Final(vendor, S.DELIVERED, s)
        for s in seconds
    ]


# -- which transitions count ---------------------------------------------------


def test_a_message_moved_to_a_final_status_is_counted_once_however_often_reported(
    database: Database,
) -> None:
    sent(database, "T1", 42)
    sent(database, "T2", 10)
    delivered = report(S.DELIVERED, "T1")
    outcomes, first = applied(database, delivered, delivered, report(S.ACCEPTED, "T2"))
    assert outcomes == [Applied.APPLIED, Applied.IGNORED, Applied.APPLIED]
    assert first == [Final("restcomm", S.DELIVERED, 42.0)]
    assert applied(database, delivered, report(S.EXPIRED, "T1"))[1] == []


def test_the_time_to_delivery_is_the_vendors_own_unless_it_is_later_than_we_heard(
    database: Database,
) -> None:
    sent(database, "T1", 60)
    sent(database, "T2", 60)
    sent(database, "T3", 60)
    _, got = applied(
        database,
        report(S.DELIVERED, "T1", vendor_at=NOW - timedelta(seconds=53)),  # 7 s after sending
        report(S.DELIVERED, "T2", vendor_at=NOW + timedelta(seconds=30)),  # its clock runs ahead
        report(S.UNDELIVERED, "T3", vendor_at=NOW - timedelta(seconds=50)),
    )
    assert got == [
        Final("restcomm", S.DELIVERED, 7.0),
        Final("restcomm", S.DELIVERED, 60.0),
        Final("restcomm", S.UNDELIVERED, None),
    ]


def test_the_webhook_intake_counts_each_final_transition_once_after_its_commit(
    database: Database, redis_client: redis.Redis
) -> None:
    sent(database, "T1", 3, now=database.clock())  # the intake applies on the database's clock
    board = DeliveryBoard(redis_client, DeliveryPolicy(min_reports=1))
    intake = ReportIntake(make_settings(database_url=database.url), database, board)
    delivered = report(S.DELIVERED, "T1")

    async def twice() -> list[Applied]:
        return [
            await intake.apply("restcomm", delivered),
            await intake.apply("restcomm", delivered),
        ]

    assert asyncio.run(twice()) == [Applied.APPLIED, Applied.IGNORED]
    figures = board.figures(["restcomm"])["restcomm"]
    assert (figures.reports, figures.counts["le5"], figures.delivered_share) == (1, 1, 1.0)


def test_a_redis_error_while_counting_loses_no_report_and_says_so(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    mid = sent(database, "T1", 3)
    away = unreachable_redis()
    settings = make_settings(database_url=database.url)
    intake = ReportIntake(settings, database, DeliveryBoard(away, POLICY))
    with caplog.at_level(logging.WARNING, logger="smsdispatch.routing.delivery"):
        result = asyncio.run(intake.apply("restcomm", report(S.DELIVERED, "T1")))
    assert result is Applied.APPLIED
    assert "delivery figures not counted for 1 final reports" in caplog.text
    with database.session() as s:
        assert s.scalar(select(messages.c.status).where(messages.c.id == mid)) == "delivered"


# -- figures over the window ---------------------------------------------------


def test_figures_give_the_delivered_share_the_slo_shares_and_a_typical_time(
    redis_client: redis.Redis,
) -> None:
    board = DeliveryBoard(redis_client, POLICY)
    board.record(finals("cue", 3, 4, 8, 45, 200, 400, 900, None, None, None))
    figures = board.figures(["cue"])["cue"]
    assert figures.reports == 10
    assert figures.delivered_share == pytest.approx(0.7)
    assert figures.within_share(60) == pytest.approx(0.4)
    assert figures.within_share(300) == pytest.approx(0.5)
    assert figures.within_share(600) == pytest.approx(0.6)
    assert figures.slow_share(300) == pytest.approx(0.2)  # 400 s and 900 s
    # Seven delivered: the median (the 3.5th) lies in the 30-60 s class.
    assert figures.typical_seconds is not None
    assert 30 < figures.typical_seconds <= 60


def test_a_vendor_with_fewer_final_reports_than_the_floor_has_no_figures(
    redis_client: redis.Redis,
) -> None:
    board = DeliveryBoard(redis_client, POLICY)
    board.record(finals("cue", 3, 4, None))
    figures = board.figures(["cue", "skycore"])
    assert (figures["cue"].reports, figures["cue"].delivered_share) == (3, None)
    assert figures["cue"].typical_seconds is None
    assert figures["skycore"].reports == 0


def test_figures_count_only_the_buckets_of_the_window_on_redis_time(
    redis_client: redis.Redis,
) -> None:
    board = DeliveryBoard(redis_client, POLICY)
    seconds, _ = redis_client.time()
    bucket = int(seconds) // POLICY.bucket_seconds
    stale = bucket - int(POLICY.window_seconds // POLICY.bucket_seconds) - 2
    redis_client.hset(f"{keys.delivery_prefix('cue')}{stale}", mapping={"delivered": 50})
    redis_client.hset(f"{keys.delivery_prefix('cue')}{bucket - 3}", mapping={"delivered": 5})
    board.record(finals("cue", None))
    assert board.figures(["cue"])["cue"].reports == 6
    assert redis_client.ttl(f"{keys.delivery_prefix('cue')}{bucket}") > POLICY.window_seconds


def test_times_to_delivery_fall_in_classes_that_hold_the_slo_edges() -> None:
    assert [time_class(s) for s in (0, 5, 5.1, 60, 61, 300, 600, 601)] == [
        "le5",
        "le5",
        "le10",
        "le60",
        "le120",
        "le300",
        "le600",
        "gt600",
    ]


def test_a_slow_threshold_that_is_no_class_edge_is_refused() -> None:
    with pytest.raises(ValueError, match="slow_after_seconds must be one of"):
        DeliveryPolicy(slow_after_seconds=240)


# -- routing on them -----------------------------------------------------------


def route_catalog(**route: Any) -> Catalog:
    priced = [
        {"vendor": "cue", "sender": "CUESMS", "weight": 50, "price_per_segment": "0.004"},
        {"vendor": "restcomm", "sender": "55555", "weight": 50, "price_per_segment": "0.009"},
    ]
    return Catalog.model_validate(
        {
            "providers": {
                "cue": {"senders": [{"id": "CUESMS", "kind": "alphanumeric"}]},
                "restcomm": {"senders": [{"id": "55555", "kind": "short_code"}]},
            },
            "routes": {"default": {"destinations": ["default"], "vendors": priced, **route}},
            "delivery": {"min_reports": 4},
        }
    )


def chosen(catalog: Catalog, client: redis.Redis, *, priority: bool = False) -> Counter[str]:
    snapshot = Router(catalog, client, random.Random(5)).snapshot(NOW)
    route = catalog.routes["default"]
    return Counter(
        c.vendor if (c := snapshot.choose(route, lambda _: True, priority=priority)) else "none"
        for _ in range(400)
    )


def test_priority_messages_go_to_the_vendor_delivering_fastest(redis_client: redis.Redis) -> None:
    catalog = route_catalog()
    board = DeliveryBoard(redis_client, catalog.delivery)
    board.record(finals("cue", 40, 50, 45, 55) + finals("restcomm", 3, 4, 2, 6))
    assert chosen(catalog, redis_client, priority=True) == {"restcomm": 400}
    assert set(chosen(catalog, redis_client)) == {"cue", "restcomm"}  # others: by weight


def test_a_cheapest_route_passes_over_a_cheap_vendor_below_its_quality_floor(
    redis_client: redis.Redis,
) -> None:
    catalog = route_catalog(prefer="cheapest", quality_floor=0.9)  # cue is the cheaper
    board = DeliveryBoard(redis_client, catalog.delivery)
    board.record(finals("cue", 3, 3, None, None) + finals("restcomm", 9, 9, 9, 9))
    assert chosen(catalog, redis_client) == {"restcomm": 400}
    board.record(finals("cue", *[3] * 36))  # 38 of 40 delivered: 95%
    assert chosen(catalog, redis_client) == {"cue": 400}


def test_rebalance_steps_down_a_vendor_whose_deliveries_are_too_often_slow(
    redis_client: redis.Redis,
) -> None:
    board = DeliveryBoard(redis_client, CATALOG.delivery)
    board.record(finals("skycore", *[20] * 17, 400, 700, 310))  # 3 of 20 over 5 min
    board.record(finals("cue", *[20] * 18, 400, None))  # 1 of 20: fine
    assert rebalance_routes(CATALOG, redis_client) == {"default": ["skycore"]}
    weights = WeightBoard(redis_client, CATALOG.weights, CATALOG.breaker)
    assert weights.current(CATALOG.routes["default"])["skycore"] == 25 - CATALOG.weights.step
    [change] = weights.changes()
    assert change.reason == "15% of 20 final reports took over 5 min to deliver in 15 min"
    assert rebalance_routes(CATALOG, redis_client) == {}  # the cooldown holds


def test_a_pinned_vendor_is_not_stepped_down_for_slow_deliveries(
    redis_client: redis.Redis,
) -> None:
    weights = WeightBoard(redis_client, CATALOG.weights, CATALOG.breaker)
    weights.pin(CATALOG.routes["default"], "skycore", 30, 60, "contract", "ops")
    DeliveryBoard(redis_client, CATALOG.delivery).record(finals("skycore", *[700] * 20))
    assert rebalance_routes(CATALOG, redis_client) == {}


# -- what operators see ----------------------------------------------------------


def test_metrics_export_each_vendors_delivered_and_slo_shares(redis_client: redis.Redis) -> None:
    DeliveryBoard(redis_client, CATALOG.delivery).record(
        finals("cue", *[30] * 20, *[200] * 10, *[500] * 6, 900, 900, None, None)
    )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RoutingCollector(redis_client, CATALOG))
    got = samples(generate_latest(registry).decode())
    cue = (("vendor", "cue"),)
    assert got[("smsdispatch_vendor_delivered_share", cue)] == pytest.approx(0.95)
    within = "smsdispatch_vendor_delivered_within_share"
    assert got[(within, (("vendor", "cue"), ("within_seconds", "60")))] == pytest.approx(0.5)
    assert got[(within, (("vendor", "cue"), ("within_seconds", "300")))] == pytest.approx(0.75)
    assert got[(within, (("vendor", "cue"), ("within_seconds", "600")))] == pytest.approx(0.9)
    reports = "smsdispatch_vendor_final_reports"
    assert got[(reports, (("outcome", "not_delivered"), ("vendor", "cue")))] == 2
    assert 20 < got[("smsdispatch_vendor_delivery_seconds", cue)] <= 60
    assert ("smsdispatch_vendor_delivered_share", (("vendor", "skycore"),)) not in got


def test_the_routes_table_shows_delivered_share_and_typical_time_within_80_columns(
    redis_client: redis.Redis,
) -> None:
    DeliveryBoard(redis_client, CATALOG.delivery).record(
        finals("messangi", *[4] * 20, None) + finals("skycore", *[700] * 20)
    )
    rows = {(r.route, r.vendor): r for r in route_rows(CATALOG, redis_client, NOW)}
    assert rows[("default", "messangi")].delivered_share == pytest.approx(20 / 21)
    console = Console(width=80, record=True, color_system=None)
    console.print(
        routes_table(
            list(rows.values()), CATALOG.breaker.window_seconds, CATALOG.delivery.window_seconds
        )
    )
    text = console.export_text()
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 80, text
    assert "last 15m" in text
    assert "95% 2s" in text  # the median within its class, as if spread evenly
    assert "100% 10m" in text


def test_a_report_that_came_before_its_sends_result_counts_when_the_worker_writes_it(
    database_url: str, settings: Settings, catalog: Catalog, redis_client: redis.Redis
) -> None:
    rt = runtime(settings, database_url, catalog, FakeClock(datetime.now(UTC)))
    try:
        [mid] = add_rows(rt.db, 1, provider="restcomm", sender="55555", at=rt.clock())
        # Restcomm reports its own id before our worker has recorded it: kept.
        with rt.db.session() as s, s.begin():
            early = apply_reports(s, [("restcomm", report(S.DELIVERED, "SM9"))], rt.clock())
        assert early == [Applied.UNMATCHED]
        with rt.db.session() as s, s.begin():
            [row] = claim(s, [mid], rt.clock(), new_claim_token())
        accepted = result_of(row.ref, Outcome.accepted("SM9"), catalog.get("restcomm"), rt.clock())
        persist(rt, [accepted], time.monotonic() + 30)
        board = DeliveryBoard(redis_client, DeliveryPolicy(min_reports=1))
        assert board.figures(["restcomm"])["restcomm"].reports == 1
    finally:
        rt.close()
