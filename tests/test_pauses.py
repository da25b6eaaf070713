"""Vendor pauses in Redis: shared by every worker, never shortened."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import redis

from smsdispatch.config.catalog import RetryPolicy
from smsdispatch.limits.pauses import (
    count_undocumented,
    current_pause,
    pause,
    pause_if_undocumented_code_repeats,
)
from smsdispatch.vocabulary import keys
from smsdispatch.vocabulary.outcomes import Outcome, OutcomeKind, Rule

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def test_a_pause_is_seen_with_its_reason(redis_client: redis.Redis) -> None:
    pause(redis_client, "cue", 30, "-3: No Credit")
    found = current_pause(redis_client, "cue", NOW)
    assert found is not None
    assert found.reason == "-3: No Credit"


def test_a_short_pause_does_not_cut_a_long_one_short(redis_client: redis.Redis) -> None:
    assert pause(redis_client, "restcomm", 300, "30002: Account suspended")
    assert not pause(redis_client, "restcomm", 2, "throttled by the vendor")
    found = current_pause(redis_client, "restcomm", NOW)
    assert found is not None
    assert found.reason == "30002: Account suspended"
    assert found.until is not None
    assert (found.until - NOW).total_seconds() > 290


# -- an undocumented code that repeats across messages -------------------------


POLICY = RetryPolicy(undocumented_pause_after=3, undocumented_window_seconds=60)


def undocumented(message_id: int, code: str = "E200") -> Outcome:
    outcome = Outcome.undocumented_code(code, reason="Insufficient balance.")
    return replace(outcome, message_id=message_id)


def test_an_undocumented_code_is_counted_once_per_message(redis_client: redis.Redis) -> None:
    for _ in range(3):
        counts = count_undocumented(redis_client, "skycore", [undocumented(7)], 60)
    assert counts["E200"][0] == 1


def test_an_undocumented_code_is_counted_across_distinct_messages_and_batches(
    redis_client: redis.Redis,
) -> None:
    count_undocumented(redis_client, "skycore", [undocumented(1), undocumented(2)], 60)
    counts = count_undocumented(redis_client, "skycore", [undocumented(3)], 60)
    assert counts["E200"][0] == 3


def test_each_undocumented_code_and_vendor_is_counted_apart(redis_client: redis.Redis) -> None:
    count_undocumented(redis_client, "skycore", [undocumented(1), undocumented(2, "E300")], 60)
    counts = count_undocumented(redis_client, "cue", [undocumented(3)], 60)
    assert {code: n for code, (n, _) in counts.items()} == {"E200": 1}


def test_the_window_starts_at_the_first_message_and_is_not_extended(
    redis_client: redis.Redis,
) -> None:
    count_undocumented(redis_client, "skycore", [undocumented(1)], 60)
    key = keys.undocumented("skycore", "E200")
    redis_client.pexpire(key, 5_000)  # as if 55 s of the window had passed
    count_undocumented(redis_client, "skycore", [undocumented(2)], 60)
    assert 0 < redis_client.pttl(key) <= 5_000


def test_only_retried_undocumented_outcomes_are_counted(redis_client: redis.Redis) -> None:
    documented = Outcome.from_code("E111", {"E111": Rule(OutcomeKind.PERMANENT, "Invalid")})
    ambiguous = Outcome.undocumented_code("WEIRD", kind=OutcomeKind.AMBIGUOUS)
    outcomes = [replace(documented, message_id=1), replace(ambiguous, message_id=2)]
    assert count_undocumented(redis_client, "messangi", outcomes, 60) == {}


def test_a_code_below_the_threshold_pauses_nothing(redis_client: redis.Redis) -> None:
    outcomes = [undocumented(1), undocumented(2)]
    assert pause_if_undocumented_code_repeats(redis_client, "skycore", outcomes, POLICY) is None
    assert current_pause(redis_client, "skycore", NOW) is None


def test_a_code_repeated_across_messages_pauses_the_vendor_with_its_words(
    redis_client: redis.Redis,
) -> None:
    outcomes = [undocumented(1), undocumented(2), undocumented(3)]
    pause_if_undocumented_code_repeats(redis_client, "skycore", outcomes, POLICY)
    found = current_pause(redis_client, "skycore", NOW)
    assert found is not None
    assert found.reason.startswith("undocumented code E200: Insufficient balance. (for 3 messages")
    assert found.until is not None
    assert (found.until - NOW).total_seconds() > POLICY.pause_seconds - 10
