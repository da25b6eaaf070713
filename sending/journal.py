"""Vendor answers kept in Redis until the database has them.

DESIGN.md invariant 3: a vendor answer, once received, is never thrown away.
A worker holds a batch's answers in memory until it writes them all in one
transaction; a worker killed in between, or one that cannot reach the
database, would lose them, and the rows would be sent again. So:

    smsdispatch:journal   "<id>:<attempts>" -> answer   written as answers arrive (coalesced:
                                                       one HSET per burst), removed once the
                                                       batch is in the database
    smsdispatch:orphaned  "<id>:<attempts>" -> answer   answers a worker handed over because
                                                       it could not reach the database

The sweeper writes orphaned answers as soon as the database is back, and
before it reclaims a row stuck in `sending` (its worker died) it looks for
the row's answer in the journal: only a row whose answer nobody kept is
sent again or asked about (sending/sweeper.py). The key is the claim, so an
answer can only ever be written to the attempt it answers.

If Redis loses them too (restarted empty, flushed) before they are written,
the rows stay `sending` until the deadline and are handled as a dead
worker's: resent where the vendor deduplicates our reference (Cue), the
vendor asked first where it can be (Restcomm), otherwise resent and counted.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime

import redis
import redis.asyncio as aioredis

from providers.outcomes import Outcome, OutcomeKind
from store.results import claim_key
from workers import keys

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Answer:
    """What the vendor said about one claimed message, and when."""

    message_id: int
    attempts: int  # the claim
    provider: str
    outcome: Outcome
    at: datetime

    @property
    def claim(self) -> str:
        return claim_key(self.message_id, self.attempts)

    def to_json(self) -> str:
        # Not dataclasses.asdict: it deep-copies, and this runs for every answer.
        outcome = {
            name: value
            for name in OUTCOME_FIELDS
            if (value := getattr(self.outcome, name)) is not None
        }
        return json.dumps(
            {
                "id": self.message_id,
                "n": self.attempts,
                "p": self.provider,
                "at": self.at.isoformat(),
                "o": outcome,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Answer:
        data = json.loads(text)
        outcome = dict(data["o"])
        outcome["kind"] = OutcomeKind(outcome["kind"])
        at = datetime.fromisoformat(data["at"])
        return cls(data["id"], data["n"], data["p"], Outcome(**outcome), at)


OUTCOME_FIELDS = tuple(f.name for f in fields(Outcome))


def worth_keeping(outcome: Outcome) -> bool:
    """Only answers to requests that left: a deferral sent nothing, so the
    row may simply be sent again."""
    return outcome.kind is not OutcomeKind.DEFERRED


class JournalWriter:
    """Writes answers to the journal from the event loop as they arrive.

    `add` never waits: answers that arrive while a write is on its way go
    together in the next one. A Redis error costs only the journal copy
    (logged); the worker still writes the database as usual.
    """

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._pending: list[Answer] = []
        self._task: asyncio.Task[None] | None = None

    def add(self, answers: Iterable[Answer]) -> None:
        self._pending.extend(a for a in answers if worth_keeping(a.outcome))
        if self._pending and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await self._client.hset(keys.JOURNAL, mapping={a.claim: a.to_json() for a in batch})
            except (redis.RedisError, OSError):
                log.warning("could not journal %d vendor answers in Redis", len(batch))

    async def drain(self) -> None:
        """Wait until every answer added so far has been written (or failed)."""
        if self._task is not None:
            await self._task


def settle(client: redis.Redis, claims: Sequence[str]) -> None:
    """The database has these answers: drop their journal copies (best-effort;
    a copy left behind is pruned by the sweeper)."""
    if not claims:
        return
    try:
        client.hdel(keys.JOURNAL, *claims)
    except redis.RedisError:
        log.warning("could not clear %d journal entries", len(claims))


def hand_over(client: redis.Redis, answers: Sequence[Answer]) -> bool:
    """Leave answers the worker could not write for the sweeper; False if
    Redis refused too (the journal copies, if any, remain)."""
    if not answers:
        return True
    pipe = client.pipeline(transaction=True)
    pipe.hset(keys.ORPHANED, mapping={a.claim: a.to_json() for a in answers})
    pipe.hdel(keys.JOURNAL, *(a.claim for a in answers))
    try:
        pipe.execute()
    except redis.RedisError:
        return False
    return True


def journaled(client: redis.Redis, claims: Sequence[str]) -> list[Answer]:
    """The journal's answers for these claims (those it has)."""
    if not claims:
        return []
    values = client.hmget(keys.JOURNAL, list(claims))
    return [Answer.from_json(v) for v in values if v is not None]


def orphans(client: redis.Redis, limit: int) -> list[Answer]:
    """Up to `limit` answers handed over by workers that lost the database."""
    return _scan(client, keys.ORPHANED, limit)


def journal_sample(client: redis.Redis, limit: int) -> list[Answer]:
    """Some journal entries, for pruning copies whose batch was written but
    whose removal failed."""
    return _scan(client, keys.JOURNAL, limit)


def forget(client: redis.Redis, key: str, claims: Sequence[str]) -> None:
    if claims:
        client.hdel(key, *claims)


def _scan(client: redis.Redis, key: str, limit: int) -> list[Answer]:
    found: list[Answer] = []
    for _, value in client.hscan_iter(key, count=min(limit, 1000)):
        found.append(Answer.from_json(value))
        if len(found) >= limit:
            break
    return found
