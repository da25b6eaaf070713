"""One run per period of each beat task, however many beat messages pile up.

Celery's `expires` would drop stale beat messages, but it is a timestamp
written with beat's clock and compared with the worker's: a worker whose
clock is minutes ahead drops every sweep as expired, one minutes behind
keeps them all. A turn is instead a Redis key with a TTL (Redis' clock
alone), so after an outage a backlog of beat messages costs one SET each.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import redis

from smsdispatch.store.db import DATABASE_AWAY
from smsdispatch.vocabulary import keys

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


_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@contextmanager
def exclusive(client: redis.Redis, key: str, seconds: float) -> Iterator[bool]:
    """Hold `key` for the block if nobody else does; yields whether we do.

    Two runs at once of a job that reads, then decides, then writes (the
    dispatcher's room in the backlog, the sweeper's stuck rows) would decide
    twice on the same reading. The lock expires after `seconds` in case its
    holder dies; it is released only by its holder (a token of its own).
    """
    token = secrets.token_hex(8)
    held = bool(client.set(key, token, nx=True, px=max(1, int(seconds * 1000))))
    try:
        yield held
    finally:
        if held:
            client.eval(_RELEASE, 1, key, token)
