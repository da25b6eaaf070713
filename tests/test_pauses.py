"""Vendor pauses in Redis: shared by every worker, never shortened."""

from __future__ import annotations

from datetime import UTC, datetime

import redis

from sending.pauses import current_pause, pause

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
    assert (found.until - NOW).total_seconds() > 290
