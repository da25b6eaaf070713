"""A batch's results kept in Redis until the database has them.

DESIGN.md invariant 3: a vendor answer, once received, is never thrown away.
A worker holds a batch's results in memory until it writes them all in one
transaction; a worker killed in between, or one that cannot reach the
database, would lose them, and the rows would be sent again. So:

    smsdispatch:journal   "<id>:<claim token>" -> result   each row's result as soon as it is
                                                         known (coalesced: one HSET per burst
                                                         of answers), removed once the batch
                                                         is in the database
    smsdispatch:orphaned  "<id>:<claim token>" -> result   results a worker handed over because
                                                         it could not reach the database

The sweeper writes orphaned results as soon as the database is back, and
before it reclaims a row stuck in `sending` (its worker died) it looks for
the row's result in both: only a row whose result nobody kept is sent again
or asked about (sending/sweeper.py). The key is the claim, whose token is
drawn anew at every claim, and a result is written only while its row is
still `sending` under that token: a result can only ever be written to the
send it belongs to.

If Redis loses them too (restarted empty, flushed) before they are written,
the rows stay `sending` until the deadline and are handled as a dead
worker's: resent where the vendor deduplicates our reference (Cue), the
vendor asked first where it can be (Restcomm), otherwise resent and counted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence

import redis
import redis.asyncio as aioredis

from smsdispatch.store.results import SendResult
from smsdispatch.vocabulary import keys

log = logging.getLogger(__name__)

# Where kept results are looked for, in order.
HASHES = (keys.JOURNAL, keys.ORPHANED)


class JournalWriter:
    """Writes results to the journal from the event loop as they arrive.

    `add` never waits: results that arrive while a write is on its way go
    together in the next one. A Redis error costs only the journal copy
    (logged, and counted in `failed`); the worker still writes the database.
    """

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._pending: list[SendResult] = []
        self._task: asyncio.Task[None] | None = None
        self.failed = 0

    def add(self, results: Iterable[SendResult]) -> None:
        self._pending.extend(results)
        if self._pending and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await self._client.hset(keys.JOURNAL, mapping={r.claim: r.to_json() for r in batch})
            except (redis.RedisError, OSError):
                self.failed += len(batch)
                log.warning("could not journal %d results in Redis", len(batch))

    async def drain(self) -> None:
        """Wait until every result added so far has been written (or failed)."""
        if self._task is not None:
            await self._task


def settle(client: redis.Redis, claims: Sequence[str]) -> None:
    """The database has these results: drop their journal copies (best-effort;
    a copy left behind is pruned by the sweeper)."""
    try:
        forget(client, keys.JOURNAL, claims)
    except redis.RedisError:
        log.warning("could not clear %d journal entries", len(claims))


def hand_over(client: redis.Redis, results: Sequence[SendResult]) -> bool:
    """Leave results the worker could not write for the sweeper; False if
    Redis refused too (the journal copies, if any, remain)."""
    if not results:
        return True
    pipe = client.pipeline(transaction=True)
    pipe.hset(keys.ORPHANED, mapping={r.claim: r.to_json() for r in results})
    pipe.hdel(keys.JOURNAL, *(r.claim for r in results))
    try:
        pipe.execute()
    except redis.RedisError:
        return False
    return True


def kept(client: redis.Redis, claims: Sequence[str]) -> dict[str, SendResult]:
    """The results kept for these claims, journaled or handed over."""
    found: dict[str, SendResult] = {}
    if not claims:
        return found
    pipe = client.pipeline(transaction=False)
    for key in HASHES:
        pipe.hmget(key, list(claims))
    for values in pipe.execute():
        for claim, value in zip(claims, values, strict=True):
            if value is not None:
                found.setdefault(claim, SendResult.from_json(value))
    return found


def orphans(client: redis.Redis, limit: int) -> list[SendResult]:
    """Up to `limit` results handed over by workers that lost the database."""
    return _scan(client, keys.ORPHANED, limit)


def journal_sample(client: redis.Redis, limit: int) -> list[SendResult]:
    """Some journal entries, for pruning copies whose batch is long written."""
    return _scan(client, keys.JOURNAL, limit)


def forget(client: redis.Redis, key: str, claims: Sequence[str]) -> None:
    if claims:
        client.hdel(key, *claims)


def _scan(client: redis.Redis, key: str, limit: int) -> list[SendResult]:
    found: list[SendResult] = []
    for _, value in client.hscan_iter(key, count=min(limit, 1000)):
        found.append(SendResult.from_json(value))
        if len(found) >= limit:
            break
    return found
