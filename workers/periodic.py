"""One run per period of each beat task, however many beat messages pile up.

Celery's `expires` would drop stale beat messages, but it is a timestamp
written with beat's clock and compared with the worker's: a worker whose
clock is minutes ahead drops every sweep as expired, one minutes behind
keeps them all. A turn is instead a Redis key with a TTL (Redis' clock
alone), so after an outage a backlog of beat messages costs one SET each.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import redis

from store.db import DATABASE_AWAY
from workers import keys

log = logging.getLogger(__name__)

# A turn lasts this share of the period: the next on-time run always finds it
# over, while a backlog drained in a burst finds it taken.
TURN_SHARE = 0.5


def take_turn(
    client: redis.Redis, task: str, period_seconds: float, share: float = TURN_SHARE
) -> bool:
    """True if this run is the period's; False if one ran less than a turn
    (`share` of the period) ago.

    Redis unreachable: run anyway. The tasks are safe to run twice; a sweep
    that does not run is worse than one that runs again.
    """
    ms = max(1, int(period_seconds * share * 1000))
    try:
        return bool(client.set(keys.periodic_turn(task), 1, nx=True, px=ms))
    except redis.RedisError:
        return True


def run_periodic(
    client: redis.Redis, task: str, period_seconds: float, job: Callable[[], object]
) -> None:
    """Run `job` if this is the period's turn. A database that cannot be
    reached is one line in the log, not a traceback a second: the next
    period tries again, and nothing is lost by waiting (the rows are there)."""
    if not take_turn(client, task, period_seconds):
        return
    try:
        job()
    except DATABASE_AWAY as exc:
        log.warning("%s skipped: the database is unreachable (%s)", task, type(exc).__name__)
