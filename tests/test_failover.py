"""Failover at send time: a routed message moves to another vendor of its route
only when its vendor certainly did not send it (sending/failover.py)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
import redis
from sqlalchemy import select

from smsdispatch.config.catalog import Catalog
from smsdispatch.config.settings import Settings
from smsdispatch.limits import pauses
from smsdispatch.local.simulators import SimulatorServer
from smsdispatch.monitoring.collector import ClusterCollector, cluster_registry
from smsdispatch.routing.delivery import DELIVERED, DeliveryFigures, time_class
from smsdispatch.routing.health import BreakerState, HealthBoard
from smsdispatch.routing.router import Router, VendorState, resting
from smsdispatch.routing.weights import WeightBoard
from smsdispatch.sending.failover import Failover, certainly_not_sent
from smsdispatch.sending.pipeline import send_messages
from smsdispatch.store.models import messages, send_attempts
from smsdispatch.store.outbox import Claimed
from smsdispatch.store.results import RowUpdate, SendResult
from smsdispatch.vocabulary.outcomes import Outcome, OutcomeKind
from smsdispatch.vocabulary.status import MessageStatus
from smsdispatch.workers.runtime import Runtime
from tests.clock import FakeClock, runtime
from tests.test_outbox import add_rows

DEFAULT_ROUTE = {"cue", "messangi", "restcomm", "skycore"}
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def rt(
    settings: Settings, database_url: str, catalog: Catalog, redis_client: redis.Redis
) -> Iterator[Runtime]:
    quick = settings.model_copy(update={"http_read_timeout_seconds": 0.5})
    runtime_ = runtime(quick, database_url, catalog, FakeClock(datetime.now(UTC)))
    yield runtime_
    runtime_.close()


def routed_rows(rt: Runtime, count: int = 1, **values: object) -> list[int]:
    """Rows routing sent to Cue on the default route."""
    return add_rows(rt.db, count, at=rt.clock(), route="default", **values)


def row(rt: Runtime, message_id: int) -> dict[str, object]:
    m = messages.c
    with rt.db.session() as s:
        found = s.execute(
            select(m.provider, m.sender, m.status, m.attempts, m.route, m.error_reason).where(
                m.id == message_id
            )
        ).one()
    return dict(found._mapping)


def attempts_of(rt: Runtime, message_id: int) -> list[tuple[str | None, str | None, str]]:
    a = send_attempts.c
    with rt.db.session() as s:
        rows = s.execute(
            select(a.provider, a.sender, a.outcome)
            .where(a.message_id == message_id)
            .order_by(a.attempt, a.id)
        ).all()
    return [(r.provider, r.sender, r.outcome) for r in rows]


def received_by(simulators: SimulatorServer) -> dict[str, int]:
    return {v: len(simulators[v].state.received) for v in (*DEFAULT_ROUTE, "smsbuddy")}


def fail_cue(simulators: SimulatorServer, code: str) -> None:
    simulators["cue"].state.control.fail_next = 1
    simulators["cue"].state.control.fail_with = code


# -- through the send pipeline, against the simulators -------------------------


def test_a_routed_message_its_vendor_answered_5xx_to_moves_to_another_vendor_of_its_route(
    rt: Runtime, catalog: Catalog, simulators: SimulatorServer
) -> None:
    fail_cue(simulators, "http:503")
    [mid] = routed_rows(rt)
    send_messages(rt, [mid])
    moved = row(rt, mid)
    assert moved["provider"] in DEFAULT_ROUTE - {"cue"}
    choice = catalog.routes["default"].vendor(str(moved["provider"]))
    assert choice is not None
    assert (moved["sender"], moved["status"], moved["route"]) == (
        choice.sender,
        "queued",
        "default",
    )
    assert attempts_of(rt, mid) == [("cue", "CUESMS", "retry")]


def test_a_moved_message_is_sent_once_by_its_new_vendor_under_the_same_id(
    rt: Runtime, simulators: SimulatorServer
) -> None:
    fail_cue(simulators, "http:503")
    [mid] = routed_rows(rt)
    send_messages(rt, [mid])
    send_messages(rt, [mid])
    settled = row(rt, mid)
    assert (settled["status"], settled["attempts"]) == ("accepted", 2)
    counts = received_by(simulators)
    assert counts[str(settled["provider"])] == 1
    assert sum(counts.values()) == 1
    [first, second] = attempts_of(rt, mid)
    assert (first[0], second[0], second[2]) == ("cue", settled["provider"], "accepted")


def test_a_message_that_named_its_vendor_is_retried_there_and_never_moved(
    rt: Runtime, simulators: SimulatorServer
) -> None:
    fail_cue(simulators, "http:503")
    [mid] = add_rows(rt.db, 1, at=rt.clock())
    send_messages(rt, [mid])
    assert (row(rt, mid)["provider"], row(rt, mid)["status"]) == ("cue", "queued")


def test_a_recipients_permanent_error_fails_the_message_without_another_vendor(
    rt: Runtime, simulators: SimulatorServer
) -> None:
    fail_cue(simulators, "-4")  # Invalid Destination
    [mid] = routed_rows(rt)
    send_messages(rt, [mid])
    assert (row(rt, mid)["provider"], row(rt, mid)["status"]) == ("cue", "failed")


def test_a_vendor_refusing_our_sender_moves_the_message(
    rt: Runtime, simulators: SimulatorServer
) -> None:
    fail_cue(simulators, "-5")  # Invalid Sender ID: ours, not the recipient's
    [mid] = routed_rows(rt)
    send_messages(rt, [mid])
    assert row(rt, mid)["provider"] != "cue"
    assert attempts_of(rt, mid) == [("cue", "CUESMS", "vendor_refused")]


def test_a_named_message_the_vendor_refuses_the_sender_of_fails(
    rt: Runtime, simulators: SimulatorServer
) -> None:
    fail_cue(simulators, "-5")
    [mid] = add_rows(rt.db, 1, at=rt.clock())
    send_messages(rt, [mid])
    assert row(rt, mid)["status"] == "failed"


def test_an_account_error_pauses_the_vendor_and_moves_its_messages_without_using_an_attempt(
    rt: Runtime, simulators: SimulatorServer
) -> None:
    fail_cue(simulators, "-3")  # No Credit
    [mid] = routed_rows(rt)
    send_messages(rt, [mid])
    moved = row(rt, mid)
    assert (moved["status"], moved["attempts"]) == ("queued", 0)
    assert moved["provider"] != "cue"
    assert pauses.current_pause(rt.redis, "cue", rt.clock()) is not None


def test_a_send_that_may_have_reached_the_vendor_is_never_moved(
    rt: Runtime, simulators: SimulatorServer
) -> None:
    # Cue takes the message, then answers after our read timeout.
    simulators["cue"].state.control.hang_next = 1
    simulators["cue"].state.control.hang_seconds = 1.5
    [mid] = routed_rows(rt)
    send_messages(rt, [mid])
    assert row(rt, mid)["provider"] == "cue"
    assert received_by(simulators)["cue"] == 1


def test_a_message_whose_reference_is_in_doubt_is_not_moved_even_after_a_5xx(
    rt: Runtime, simulators: SimulatorServer
) -> None:
    fail_cue(simulators, "http:503")
    [mid] = routed_rows(rt, reference_in_doubt=True)
    send_messages(rt, [mid])
    assert (row(rt, mid)["provider"], row(rt, mid)["status"]) == ("cue", "queued")


def test_routed_messages_queued_for_a_paused_vendor_move_before_any_call(
    rt: Runtime, simulators: SimulatorServer
) -> None:
    pauses.pause(rt.redis, "cue", 60, "operator")
    ids = routed_rows(rt, 3)
    send_messages(rt, ids)
    assert all(row(rt, i)["provider"] != "cue" for i in ids)
    assert received_by(simulators)["cue"] == 0
    assert all(attempts_of(rt, i) == [] for i in ids)
    assert all(row(rt, i)["attempts"] == 0 for i in ids)


def test_named_messages_for_a_paused_vendor_are_held_there(
    rt: Runtime, simulators: SimulatorServer
) -> None:
    pauses.pause(rt.redis, "cue", 60, "operator")
    [mid] = add_rows(rt.db, 1, at=rt.clock())
    send_messages(rt, [mid])
    assert (row(rt, mid)["provider"], row(rt, mid)["status"]) == ("cue", "queued")


def test_routed_messages_queued_for_a_vendor_whose_breaker_opened_move_before_any_call(
    rt: Runtime, catalog: Catalog, simulators: SimulatorServer
) -> None:
    HealthBoard(rt.redis, catalog.breaker).record(
        "cue", [OutcomeKind.RETRY] * catalog.breaker.min_volume
    )
    ids = routed_rows(rt, 2)
    send_messages(rt, ids)
    assert all(row(rt, i)["provider"] != "cue" for i in ids)
    assert received_by(simulators)["cue"] == 0


def test_a_moved_result_keeps_its_new_vendor_through_the_journal() -> None:
    update = RowUpdate(7, "t", MessageStatus.QUEUED, 1, provider="messangi", sender="12345")
    again = SendResult.from_json(SendResult(update).to_json())
    assert (again.update.provider, again.update.sender) == ("messangi", "12345")


# -- the decision, without I/O -------------------------------------------------


def claimed(
    *, route: str | None = "default", in_doubt: bool = False, text: str = "hi", attempts: int = 1
) -> Claimed:
    return Claimed(
        1,
        "ref",
        "cue",
        "CUESMS",
        "+1202555012",
        text,
        "gsm7",
        1,
        attempts,
        "tok",
        in_doubt,
        route=route,
    )


def decider(
    catalog: Catalog,
    unconfigured: dict[str, bool] | None = None,
    vendors: dict[str, VendorState] | None = None,
) -> Failover:
    """Failover over a snapshot built by hand (its Redis is never asked)."""
    snapshot = resting(catalog.routes.values(), random.Random(1))
    snapshot.vendors.update(vendors or {})
    return Failover(
        Router(catalog, redis.Redis()),
        list(catalog.routes.values()),
        NOW,
        unconfigured or dict.fromkeys(catalog.providers, False),
        snapshot=snapshot,
    )


def failover(catalog: Catalog, **vendors: VendorState) -> Failover:
    return decider(catalog, vendors=vendors)


FIVE_HUNDRED = Outcome(OutcomeKind.RETRY, code="500")


@pytest.mark.parametrize(
    "outcome",
    [
        Outcome(OutcomeKind.AMBIGUOUS, code="timeout"),
        Outcome(OutcomeKind.RETRY, code="-1", maybe_sent=True),
        Outcome(OutcomeKind.PERMANENT, code="-4"),
        Outcome(OutcomeKind.ACCEPTED, tracking_id="T1"),
        Outcome(OutcomeKind.DEFERRED, code="limiter_unavailable"),
    ],
    ids=["ambiguous", "maybe-sent", "recipient", "accepted", "limiter-away"],
)
def test_answers_that_do_not_prove_the_message_unsent_never_move_it(outcome: Outcome) -> None:
    assert not certainly_not_sent(claimed(), outcome)


@pytest.mark.parametrize(
    "kind",
    [
        OutcomeKind.RETRY,
        OutcomeKind.RATE_LIMITED,
        OutcomeKind.ACCOUNT,
        OutcomeKind.OUTSIDE_HOURS,
        OutcomeKind.VENDOR_REFUSED,
        OutcomeKind.DEFERRED,
    ],
)
def test_answers_that_prove_the_message_unsent_allow_a_move(kind: OutcomeKind) -> None:
    assert certainly_not_sent(claimed(), Outcome(kind, code="x"))


def test_a_move_goes_only_to_a_vendor_that_can_send_now(catalog: Catalog) -> None:
    closed = VendorState(paused=True, breaker=BreakerState.CLOSED, backlog_seconds=0.0)
    open_breaker = VendorState(paused=False, breaker=BreakerState.OPEN, backlog_seconds=0.0)
    chooser = failover(catalog, messangi=closed, restcomm=open_breaker)
    moves = {
        chooser.after(claimed(), Outcome(OutcomeKind.RETRY, code="500"), NOW) for _ in range(20)
    }
    assert {m.provider for m in moves if m is not None} == {"skycore"}


def test_a_message_stays_when_no_other_vendor_of_its_route_can_send_now(catalog: Catalog) -> None:
    paused = VendorState(paused=True, breaker=BreakerState.CLOSED, backlog_seconds=0.0)
    chooser = failover(catalog, messangi=paused, restcomm=paused, skycore=paused)
    assert chooser.after(claimed(), Outcome(OutcomeKind.RETRY, code="500"), NOW) is None


def test_a_deferred_message_spills_only_to_a_vendor_booked_less_than_two_seconds_ahead(
    catalog: Catalog,
) -> None:
    def booked(seconds: float) -> VendorState:
        return VendorState(paused=False, breaker=BreakerState.CLOSED, backlog_seconds=seconds)

    deferred = Outcome(OutcomeKind.DEFERRED, code="rate_limit")
    busy = failover(catalog, messangi=booked(5), restcomm=booked(3), skycore=booked(9))
    assert busy.after(claimed(), deferred, NOW) is None
    one_free = failover(catalog, messangi=booked(5), restcomm=booked(0.5), skycore=booked(9))
    spilled = one_free.after(claimed(), deferred, NOW)
    assert spilled is not None
    assert spilled.provider == "restcomm"


def test_a_move_refunds_the_attempt_only_when_the_vendor_did_no_work(catalog: Catalog) -> None:
    chooser = failover(catalog)
    throttled = chooser.after(claimed(), Outcome(OutcomeKind.RATE_LIMITED, code="429"), NOW)
    failed = chooser.after(claimed(), Outcome(OutcomeKind.RETRY, code="500"), NOW)
    assert throttled is not None
    assert failed is not None
    assert (throttled.attempts, failed.attempts) == (0, 1)


def test_a_message_is_moved_only_to_a_vendor_that_can_carry_its_text(catalog: Catalog) -> None:
    short = {
        v: catalog.get(v).model_copy(update={"max_text_chars": 10}) for v in ("messangi", "skycore")
    }
    narrow = catalog.model_copy(update={"providers": {**catalog.providers, **short}})
    chooser = decider(narrow)
    moves = {chooser.after(claimed(text="x" * 11), FIVE_HUNDRED, NOW) for _ in range(20)}
    assert {m.provider for m in moves if m is not None} == {"restcomm"}


def test_a_message_is_never_moved_to_a_vendor_without_its_settings(catalog: Catalog) -> None:
    unconfigured = dict.fromkeys(catalog.providers, True) | {"cue": False, "skycore": False}
    chooser = decider(catalog, unconfigured)
    for _ in range(10):
        moved = chooser.after(claimed(), Outcome(OutcomeKind.RETRY, code="500"), NOW)
        assert moved is not None
        assert moved.provider == "skycore"


def test_every_move_is_counted_on_metrics_by_vendor_and_new_vendor(
    rt: Runtime, simulators: SimulatorServer
) -> None:
    fail_cue(simulators, "http:503")
    [mid] = routed_rows(rt)
    send_messages(rt, [mid])
    to = str(row(rt, mid)["provider"])
    registry = cluster_registry(ClusterCollector(rt.redis, rt.db, [], db_cache_seconds=0))
    moved = {"provider": "cue", "to": to}
    assert registry.get_sample_value("smsdispatch_failovers_total", moved) == 1.0


def test_a_message_out_of_attempts_is_not_moved_but_fails_where_it_is(catalog: Catalog) -> None:
    spent = claimed(attempts=catalog.get("cue").retry.max_attempts)
    assert failover(catalog).after(spent, FIVE_HUNDRED, NOW) is None


def test_the_first_move_is_immediate_and_later_ones_wait_their_back_off(catalog: Catalog) -> None:
    first = failover(catalog).after(claimed(attempts=1), FIVE_HUNDRED, NOW)
    again = failover(catalog).after(claimed(attempts=3), FIVE_HUNDRED, NOW)
    assert first is not None
    assert again is not None
    assert first.next_attempt_at == NOW
    assert again.next_attempt_at is not None
    assert again.next_attempt_at > NOW


def test_an_undocumented_code_never_moves_a_message() -> None:
    odd = Outcome.undocumented_code("3", reason="odd status")
    assert odd.kind is OutcomeKind.RETRY
    assert not certainly_not_sent(claimed(), odd)


def test_a_routed_message_refused_by_its_vendor_waits_when_no_other_vendor_can_take_it(
    catalog: Catalog,
) -> None:
    paused = VendorState(paused=True, breaker=BreakerState.CLOSED, backlog_seconds=0.0)
    chooser = failover(catalog, messangi=paused, restcomm=paused, skycore=paused)
    refused = Outcome(OutcomeKind.VENDOR_REFUSED, code="-5", reason="Invalid Sender ID")
    row = claimed()
    assert chooser.after(row, refused, NOW) is None
    planned = RowUpdate(1, "tok", MessageStatus.FAILED, 1, final_at=NOW)
    waiting = chooser.stay(row, refused, planned, NOW)
    assert waiting.status is MessageStatus.QUEUED
    assert waiting.next_attempt_at is not None
    assert waiting.next_attempt_at > NOW


def test_a_named_message_refused_by_its_vendor_still_fails(catalog: Catalog) -> None:
    refused = Outcome(OutcomeKind.VENDOR_REFUSED, code="-5", reason="Invalid Sender ID")
    planned = RowUpdate(1, "tok", MessageStatus.FAILED, 1, final_at=NOW)
    assert failover(catalog).stay(claimed(route=None), refused, planned, NOW) is planned


def test_routed_messages_queued_for_a_vendor_an_operator_drained_move_before_any_call(
    rt: Runtime, catalog: Catalog, simulators: SimulatorServer
) -> None:
    WeightBoard(rt.redis, catalog.weights, catalog.breaker).pin(
        catalog.routes["default"], "cue", 0, 600, "maintenance", "ops"
    )
    ids = routed_rows(rt, 3)
    send_messages(rt, ids)
    assert all(row(rt, i)["provider"] != "cue" for i in ids)
    assert received_by(simulators)["cue"] == 0


def test_an_urgent_message_fails_over_to_the_vendor_delivering_fastest(catalog: Catalog) -> None:
    def delivering(seconds: float) -> DeliveryFigures:
        return DeliveryFigures({DELIVERED: 50, time_class(seconds): 50}, min_reports=20)

    chooser = failover(catalog)
    chooser.routing.delivery.update(
        messangi=delivering(30), restcomm=delivering(4), skycore=delivering(120)
    )
    urgent = replace(claimed(), priority=1)
    moves = {chooser.after(urgent, FIVE_HUNDRED, NOW) for _ in range(10)}
    assert {m.provider for m in moves if m is not None} == {"restcomm"}
