"""What `campaign watch` says: statuses by their names, phases, a steady rate."""

from __future__ import annotations

import pytest

from smsdispatch.campaigns.progress import SlidingRate, finished, phase, status_line


def test_statuses_are_named_as_everywhere_else_undelivered_is_not_failed() -> None:
    counts = {"delivered": 280, "undelivered": 4, "expired": 1, "failed": 2, "accepted": 9}
    assert status_line(counts) == (
        "accepted 9 · delivered 280 · undelivered 4 · expired 1 · failed 2"
    )


def test_a_completed_campaign_awaiting_reports_says_so_and_is_not_finished() -> None:
    counts = {"delivered": 2, "accepted": 296}
    assert phase("completed", counts) == "completed: sent, 296 awaiting reports"
    assert not finished("completed", counts)


def test_a_campaign_is_finished_once_ended_and_every_message_final() -> None:
    counts = {"delivered": 290, "undelivered": 8}
    assert phase("completed", counts) == "completed: all final"
    assert finished("completed", counts)
    assert not finished("running", counts)  # more may still be released
    assert phase("running", {"queued": 3}) == "running"


def test_the_rate_is_steady_when_sends_come_in_bursts() -> None:
    """16.5 a second leaving as a worker's batches allow: 33 at every other
    one-second refresh. Between two refreshes that reads 33/s, then 0/s."""
    rate = SlidingRate(window=10.0)
    seen = []
    for second in range(40):
        seen.append(rate.add(float(second), 33 * ((second + 1) // 2)))
    assert all(15.0 <= r <= 18.5 for r in seen[10:]), seen[10:]


def test_the_rate_follows_a_stop_within_the_window() -> None:
    rate = SlidingRate(window=10.0)
    for second in range(20):
        rate.add(float(second), 10 * second)
    for second in range(20, 31):
        last = rate.add(float(second), 190)
    assert last == pytest.approx(0.0)
