"""What each outcome does to a message row (pure rules, no database)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from config.catalog import RetryPolicy
from providers.outcomes import Outcome, OutcomeKind
from sending.transitions import backoff_seconds, hold, plan_update
from store.status import MessageStatus

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
POLICY = RetryPolicy(
    max_attempts=3,
    backoff_base_seconds=2,
    backoff_cap_seconds=60,
    rate_limited_wait_seconds=7,
    pause_seconds=300,
)


def test_accepted_records_tracking_id_and_clears_errors() -> None:
    update = plan_update(1, 1, Outcome.accepted("T-1", vendor_status="QUEUE"), POLICY, NOW)
    assert (update.status, update.tracking_id, update.vendor_status) == (
        MessageStatus.ACCEPTED,
        "T-1",
        "QUEUE",
    )
    assert update.sent_at == NOW
    assert update.error_code is None


def test_permanent_failure_keeps_vendor_code_and_reason() -> None:
    outcome = Outcome(OutcomeKind.PERMANENT, code="-4", reason="Invalid Destination")
    update = plan_update(1, 1, outcome, POLICY, NOW)
    assert (update.status, update.error_code, update.error_reason) == (
        MessageStatus.FAILED,
        "-4",
        "Invalid Destination",
    )
    assert update.final_at == NOW


def test_retry_waits_with_backoff_and_keeps_the_attempt() -> None:
    update = plan_update(1, 2, Outcome(OutcomeKind.RETRY, code="500"), POLICY, NOW)
    assert update.status is MessageStatus.QUEUED
    assert update.attempts == 2
    assert update.next_attempt_at is not None
    assert NOW + timedelta(seconds=2) <= update.next_attempt_at <= NOW + timedelta(seconds=4)


def test_retry_budget_exhausted_fails_the_message_with_the_last_reason() -> None:
    outcome = Outcome(OutcomeKind.RETRY, code="-1", reason="System Error")
    update = plan_update(1, 3, outcome, POLICY, NOW)
    assert update.status is MessageStatus.FAILED
    assert update.error_reason == "gave up after 3 attempts: System Error"


def test_rate_limited_refunds_the_attempt_and_honours_retry_after() -> None:
    outcome = Outcome(OutcomeKind.RATE_LIMITED, code="429", retry_after=12)
    update = plan_update(1, 3, outcome, POLICY, NOW)
    assert (update.status, update.attempts) == (MessageStatus.QUEUED, 2)
    assert update.next_attempt_at == NOW + timedelta(seconds=12)


def test_rate_limited_without_retry_after_waits_the_catalog_interval() -> None:
    update = plan_update(1, 1, Outcome(OutcomeKind.RATE_LIMITED, code="429"), POLICY, NOW)
    assert update.next_attempt_at == NOW + timedelta(seconds=7)


def test_account_error_holds_the_message_for_the_pause_without_failing_it() -> None:
    outcome = Outcome(OutcomeKind.ACCOUNT, code="-3", reason="No Credit")
    update = plan_update(1, 1, outcome, POLICY, NOW)
    assert (update.status, update.attempts) == (MessageStatus.QUEUED, 0)
    assert update.next_attempt_at == NOW + timedelta(seconds=300)
    assert update.error_reason == "No Credit"


def test_ambiguous_outcome_marks_the_message_unknown() -> None:
    update = plan_update(1, 1, Outcome(OutcomeKind.AMBIGUOUS, reason="ReadTimeout"), POLICY, NOW)
    assert update.status is MessageStatus.UNKNOWN


def test_hold_refunds_the_attempt() -> None:
    update = hold(5, 4, NOW, reason="paused")
    assert (update.attempts, update.claimed_attempts, update.error_reason) == (3, 4, "paused")


def test_backoff_grows_exponentially_and_stops_at_the_cap() -> None:
    rng = random.Random(1)
    waits = [backoff_seconds(n, POLICY, rng) for n in range(1, 10)]
    assert 1 <= waits[0] <= 2
    assert 4 <= waits[2] <= 8
    assert all(30 <= w <= 60 for w in waits[5:])
