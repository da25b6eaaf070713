"""What the failover tests read back: their own messages, each one's attempts,
and which vendors the simulators say received it.

Each test knows its messages by the ids the producer returned; the module's
one stack serves several tests, so nothing here counts the whole table.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import redis
from sqlalchemy import select

from smsdispatch.local.simulators import SimulatorServer
from smsdispatch.producer.api import Producer
from smsdispatch.producer.validation import SendRequest
from smsdispatch.store.db import Database
from smsdispatch.store.models import messages, send_attempts
from smsdispatch.vocabulary import keys
from smsdispatch.vocabulary.status import SETTLED

VENDORS = ("cue", "messangi", "smsbuddy", "restcomm", "skycore")

# Routing's state in Redis that one test must not leave to the next: the
# vendors' health, breakers and pauses, the routes' weights, pins and
# changes. Celery's keys (queues, bindings) and the limiter's bookings stay:
# the workers of the module's stack keep using them.
ROUTING_STATE = (
    f"{keys.PREFIX}:health:*",
    f"{keys.PREFIX}:breaker:*",
    f"{keys.PREFIX}:pause:*",
    f"{keys.PREFIX}:throttles:*",
    f"{keys.PREFIX}:undocumented:*",
    f"{keys.PREFIX}:routing:*",
)


def forget_routing_state(client: redis.Redis) -> None:
    for pattern in ROUTING_STATE:
        found = list(client.scan_iter(match=pattern, count=1000))
        if found:
            client.delete(*found)


@dataclass(frozen=True, slots=True)
class Row:
    id: int
    provider: str
    status: str
    error_code: str | None
    recipient: str
    text: str


@dataclass(frozen=True, slots=True)
class Attempt:
    attempt: int
    outcome: str
    code: str | None


def send(producer: Producer, requests: Sequence[SendRequest]) -> list[int]:
    """Store and enqueue a batch; its ids in request order (none may be rejected)."""
    result = producer.send_batch(requests)
    assert not result.rejected, result.rejected
    return [result.ids[i] for i in range(len(requests))]


def rows(db: Database, ids: Iterable[int]) -> dict[int, Row]:
    m = messages.c
    query = select(m.id, m.provider, m.status, m.error_code, m.recipient, m.text)
    with db.session() as session:
        found = session.execute(query.where(m.id.in_(list(ids))))
        return {
            r.id: Row(r.id, r.provider, r.status, r.error_code, r.recipient, r.text) for r in found
        }


def wait_settled(db: Database, ids: Sequence[int], timeout: float) -> dict[int, Row]:
    """The rows once every one is settled (accepted, unknown or final)."""
    deadline = time.monotonic() + timeout
    while True:
        found = rows(db, ids)
        if len(found) == len(ids) and all(r.status in SETTLED for r in found.values()):
            return found
        if time.monotonic() > deadline:
            waiting = sorted(
                (r.status, r.provider) for r in found.values() if r.status not in SETTLED
            )
            raise AssertionError(
                f"{len(waiting)} of {len(ids)} not settled after {timeout}s: {waiting[:20]}"
            )
        time.sleep(0.1)


def attempts(db: Database, ids: Iterable[int]) -> dict[int, list[Attempt]]:
    """Each message's vendor calls, in order."""
    a = send_attempts.c
    query = (
        select(a.message_id, a.attempt, a.outcome, a.code)
        .where(a.message_id.in_(list(ids)))
        .order_by(a.message_id, a.id)
    )
    out: dict[int, list[Attempt]] = defaultdict(list)
    with db.session() as session:
        for r in session.execute(query):
            out[r.message_id].append(Attempt(r.attempt, r.outcome, r.code))
    return dict(out)


def first_vendors(db: Database, ids: Iterable[int]) -> dict[int, str]:
    """The vendor each message was first sent to: its first attempt's (migration 0012)."""
    a = send_attempts.c
    first = (
        select(a.message_id, a.provider)
        .where(a.message_id.in_(list(ids)))
        .order_by(a.message_id, a.id)
    )
    out: dict[int, str] = {}
    with db.session() as session:
        for r in session.execute(first):
            out.setdefault(r.message_id, r.provider)
    return out


def receivers(simulators: SimulatorServer) -> dict[tuple[str, str], list[str]]:
    """(recipient without '+', text) -> every vendor that received it, once per receipt."""
    out: dict[tuple[str, str], list[str]] = defaultdict(list)
    for vendor in VENDORS:
        for r in simulators[vendor].state.received:
            out[(r.to.lstrip("+"), r.text)].append(vendor)
    return out


def received_by(simulators: SimulatorServer, found: Iterable[Row]) -> dict[int, list[str]]:
    """Per message, the vendors that received it (as often as they did)."""
    seen = receivers(simulators)
    return {r.id: seen.get((r.recipient.lstrip("+"), r.text), []) for r in found}
