"""What each outcome does to a message row (pure rules, no database)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from smsdispatch.config.catalog import ProviderEntry, QuietHours, RetryPolicy
from smsdispatch.sending.transitions import backoff_seconds, hold, plan_update
from smsdispatch.store.results import ClaimRef
from smsdispatch.vocabulary.message import is_reference
from smsdispatch.vocabulary.outcomes import Outcome, OutcomeKind
from smsdispatch.vocabulary.status import MessageStatus

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
POLICY = RetryPolicy(
    max_attempts=3,
    backoff_base_seconds=2,
    backoff_cap_seconds=60,
    rate_limited_wait_seconds=7,
    pause_seconds=300,
)

ENTRY = ProviderEntry(name="cue", retry=POLICY)
# SMSBuddy's window: only between 10:00 and 21:00 India time.
INDIA_HOURS = QuietHours.model_validate(
    {"start": "21:00", "end": "10:00", "timezone": "Asia/Kolkata"}
)


def test_accepted_records_tracking_id_and_clears_errors() -> None:
    update = plan_update(
        ClaimRef(1, "t", 1), Outcome.accepted("T-1", vendor_status="QUEUE"), ENTRY, NOW
    )
    assert (update.status, update.tracking_id, update.vendor_status) == (
        MessageStatus.ACCEPTED,
        "T-1",
        "QUEUE",
    )
    assert update.sent_at == NOW
    assert update.error_code is None


def test_permanent_failure_keeps_vendor_code_and_reason() -> None:
    outcome = Outcome(OutcomeKind.PERMANENT, code="-4", reason="Invalid Destination")
    update = plan_update(ClaimRef(1, "t", 1), outcome, ENTRY, NOW)
    assert (update.status, update.error_code, update.error_reason) == (
        MessageStatus.FAILED,
        "-4",
        "Invalid Destination",
    )
    assert update.final_at == NOW


def test_retry_waits_with_backoff_and_keeps_the_attempt() -> None:
    update = plan_update(ClaimRef(1, "t", 2), Outcome(OutcomeKind.RETRY, code="500"), ENTRY, NOW)
    assert update.status is MessageStatus.QUEUED
    assert update.attempts == 2
    assert update.next_attempt_at is not None
    assert NOW + timedelta(seconds=2) <= update.next_attempt_at <= NOW + timedelta(seconds=4)


def test_retry_budget_exhausted_fails_the_message_with_the_last_reason() -> None:
    outcome = Outcome(OutcomeKind.RETRY, code="-1", reason="System Error")
    update = plan_update(ClaimRef(1, "t", 3), outcome, ENTRY, NOW)
    assert update.status is MessageStatus.FAILED
    assert update.error_reason == "gave up after 3 attempts: System Error"


def test_rate_limited_refunds_the_attempt_and_honours_retry_after() -> None:
    outcome = Outcome(OutcomeKind.RATE_LIMITED, code="429", retry_after=12)
    update = plan_update(ClaimRef(1, "t", 3), outcome, ENTRY, NOW)
    assert (update.status, update.attempts) == (MessageStatus.QUEUED, 2)
    assert update.next_attempt_at == NOW + timedelta(seconds=12)


def test_rate_limited_without_retry_after_waits_the_catalog_interval() -> None:
    update = plan_update(
        ClaimRef(1, "t", 1), Outcome(OutcomeKind.RATE_LIMITED, code="429"), ENTRY, NOW
    )
    assert update.next_attempt_at == NOW + timedelta(seconds=7)


def test_account_error_holds_the_message_for_the_pause_without_failing_it() -> None:
    outcome = Outcome(OutcomeKind.ACCOUNT, code="-3", reason="No Credit")
    update = plan_update(ClaimRef(1, "t", 1), outcome, ENTRY, NOW)
    assert (update.status, update.attempts) == (MessageStatus.QUEUED, 0)
    assert update.next_attempt_at == NOW + timedelta(seconds=300)
    assert update.error_reason == "No Credit"


def test_ambiguous_outcome_marks_the_message_unknown() -> None:
    update = plan_update(
        ClaimRef(1, "t", 1), Outcome(OutcomeKind.AMBIGUOUS, reason="ReadTimeout"), ENTRY, NOW
    )
    assert update.status is MessageStatus.UNKNOWN


def test_hold_refunds_the_attempt() -> None:
    update = hold(ClaimRef(5, "t", 4), NOW, reason="paused")
    assert (update.attempts, update.claim, update.error_reason) == (3, "t", "paused")


def test_backoff_grows_exponentially_and_stops_at_the_cap() -> None:
    rng = random.Random(1)
    waits = [backoff_seconds(n, POLICY, rng) for n in range(1, 10)]
    assert 1 <= waits[0] <= 2
    assert 4 <= waits[2] <= 8
    assert all(30 <= w <= 60 for w in waits[5:])


def test_our_own_deferral_refunds_the_attempt_and_waits_as_told() -> None:
    outcome = Outcome(OutcomeKind.DEFERRED, code="rate_limit", retry_after=3)
    update = plan_update(ClaimRef(1, "t", 2), outcome, ENTRY, NOW)
    assert (update.status, update.attempts) == (MessageStatus.QUEUED, 1)
    assert update.next_attempt_at == NOW + timedelta(seconds=3)


def test_outside_hours_holds_the_message_until_the_window_opens() -> None:
    entry = ProviderEntry(name="smsbuddy", quiet_hours=INDIA_HOURS)
    late_evening = datetime(2026, 11, 22, 17, 0, tzinfo=UTC)  # 22:30 in India
    update = plan_update(
        ClaimRef(1, "t", 1), Outcome(OutcomeKind.OUTSIDE_HOURS, code="451"), entry, late_evening
    )
    assert (update.status, update.attempts) == (MessageStatus.QUEUED, 0)
    assert update.next_attempt_at == datetime(2026, 11, 23, 4, 30, tzinfo=UTC)  # 10:00 IST


def test_outside_hours_without_declared_hours_waits_a_pause() -> None:
    update = plan_update(
        ClaimRef(1, "t", 1), Outcome(OutcomeKind.OUTSIDE_HOURS, code="451"), ENTRY, NOW
    )
    assert update.next_attempt_at == NOW + timedelta(seconds=POLICY.pause_seconds)


def test_the_sender_chosen_from_a_pool_is_recorded() -> None:
    outcome = Outcome(OutcomeKind.ACCEPTED, tracking_id="T", sender="15550000002")
    assert plan_update(ClaimRef(1, "t", 1), outcome, ENTRY, NOW).sender == "15550000002"


def test_quiet_hours_wrap_past_midnight() -> None:
    assert INDIA_HOURS.next_open(datetime(2026, 11, 22, 6, 0, tzinfo=UTC)) is None  # 11:30
    early = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)  # 06:30 in India
    assert INDIA_HOURS.next_open(early) == datetime(2026, 11, 22, 4, 30, tzinfo=UTC)


def test_retries_that_end_on_an_ambiguous_try_leave_the_message_unknown() -> None:
    outcome = Outcome(
        OutcomeKind.RETRY, code="ambiguous", reason="ReadTimeout; resend is safe", maybe_sent=True
    )
    update = plan_update(ClaimRef(1, "t", POLICY.max_attempts), outcome, ENTRY, NOW)
    assert update.status is MessageStatus.UNKNOWN


def test_an_answer_that_may_have_been_sent_puts_the_reference_in_doubt() -> None:
    timeout = Outcome(OutcomeKind.RETRY, code="ambiguous", maybe_sent=True)
    refused = Outcome(OutcomeKind.RETRY, code="-1", reason="System Error")

    assert plan_update(ClaimRef(1, "t", 1), timeout, ENTRY, NOW).reference_in_doubt is True
    assert plan_update(ClaimRef(1, "t", 1), refused, ENTRY, NOW).reference_in_doubt is None


def test_a_reference_the_vendor_will_not_take_again_is_replaced() -> None:
    spent = Outcome(OutcomeKind.RETRY, code="-7", renew_reference=True)

    update = plan_update(ClaimRef(1, "t", 1), spent, ENTRY, NOW)

    assert update.status is MessageStatus.QUEUED
    assert update.reference is not None
    assert is_reference(update.reference)
