"""One run per period of each beat task, however many beat messages pile up.

Celery's `expires` would drop stale beat messages, but it is a timestamp
written with beat's clock and compared with the worker's: a worker whose
clock is minutes ahead drops every sweep as expired, one minutes behind
keeps them all. A turn is instead a Redis key with a TTL (Redis' clock
alone), so after an outage a backlog of beat messages costs one SET each.
"""

from __future__ import annotations

import redis

from workers import keys

# A turn lasts this share of the period: the next on-time run always finds it
# over, while a backlog drained in a burst finds it taken.
TURN_SHARE = 0.5


def take_turn(client: redis.Redis, task: str, period_seconds: float) -> bool:
    """True if this run is the period's; False if one ran less than a turn ago.

    Redis unreachable: run anyway. The tasks are safe to run twice; a sweep
    that does not run is worse than one that runs again.
    """
    ms = max(1, int(period_seconds * TURN_SHARE * 1000))
    try:
        return bool(client.set(keys.periodic_turn(task), 1, nx=True, px=ms))
    except redis.RedisError:
        return True
