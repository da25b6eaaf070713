"""An operator's pause and resume of a vendor, for the CLI and the API alike.

Resuming lifts the pause in Redis (every worker reads it before each batch)
and makes due at once the rows held for it, which would otherwise wait
until the end the pause had when they were held.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import redis

from smsdispatch.config.catalog import Catalog
from smsdispatch.limits import pauses
from smsdispatch.limits.pauses import Pause
from smsdispatch.store.control import release_held
from smsdispatch.store.db import Database

# The rows whose own answer paused the vendor were written just before the
# pause was set (a batch's results are written before its pause): look this
# far back from the moment the pause began, measured as the pause's age.
CLOCK_MARGIN = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class Resumed:
    provider: str
    lifted: Pause | None  # the pause that was in force, if any
    released: int  # rows held for it, now due


def pause_vendor(
    client: redis.Redis,
    catalog: Catalog,
    provider: str,
    *,
    reason: str,
    by: str,
    seconds: float | None = None,
) -> Pause:
    """Pause the vendor for every worker until resumed, or for `seconds`;
    raises UnknownProviderError (naming the known ones) for a wrong name."""
    catalog.get(provider)
    pauses.pause_by_operator(client, provider, reason, by, seconds)
    found = pauses.current_pause(client, provider, pauses.redis_now(client))
    assert found is not None  # just set; only a resume in between would lift it
    return found


def resume_vendor(client: redis.Redis, db: Database, catalog: Catalog, provider: str) -> Resumed:
    """Lift the vendor's pause, whoever set it, and let its held rows go."""
    catalog.get(provider)
    redis_now = pauses.redis_now(client)
    lifted = pauses.resume(client, provider, redis_now)
    with db.session() as session, session.begin():
        now = db.clock()
        # The pause's age is read on Redis' clock, where it began, and taken
        # back from the database's now: no two clocks are compared.
        age = redis_now - lifted.since if lifted and lifted.since else None
        since = now - age - CLOCK_MARGIN if age is not None else None
        released = release_held(session, provider, pauses.HELD_CODE, since, now)
    return Resumed(provider, lifted, released)


def vendor_pauses(client: redis.Redis, catalog: Catalog) -> list[tuple[str, Pause | None]]:
    """Every vendor of the catalog and its pause, if any."""
    now = pauses.redis_now(client)
    return [(p, pauses.current_pause(client, p, now)) for p in catalog.providers]
