"""Two installations on one vendor account: their row ids collide, their references do not.

A second installation (staging, a demo, a move from SQLite to PostgreSQL) has
its own database, so it hands out row ids 1, 2, 3... again. When the row id
was the vendor reference, Cue answered the second installation's messages
with -7 "Duplicate Client Reference" and they were recorded accepted without
being sent.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import redis
from sqlalchemy import select

from smsdispatch.local.processes import PrivateRedis
from smsdispatch.local.simulators import SimulatorServer
from smsdispatch.producer.validation import SendRequest
from smsdispatch.store.migrate import upgrade
from smsdispatch.store.models import messages
from tests.integration.stack import Stack, running_stack

pytestmark = pytest.mark.slow

VENDORS = ("cue", "messangi", "smsbuddy", "restcomm", "skycore")
# The vendors that take a reference of ours.
REFERENCED = ("cue", "messangi", "smsbuddy")
PER_INSTALLATION = 100


def requests_of(installation: str) -> list[SendRequest]:
    """The same recipients and vendors in every installation; the text says whose."""
    return [
        SendRequest(f"+1202555{i:04d}", f"{installation} message {i}", VENDORS[i % len(VENDORS)])
        for i in range(PER_INSTALLATION)
    ]


def references(stack: Stack, vendor: str) -> set[str]:
    with stack.db.session() as session:
        m = messages.c
        return set(session.scalars(select(m.reference).where(m.provider == vendor)))


@pytest.fixture
def installations(
    redis_client: redis.Redis,
    redis_url: str,
    database_url: str,
    simulators: SimulatorServer,
    tmp_path: Path,
) -> Iterator[dict[str, Stack]]:
    """Production on PostgreSQL and the test Redis; staging on a SQLite file and a
    Redis of its own; each with its own worker and beat; both on the same simulators
    and the same vendor credentials."""
    staging_db = f"sqlite:///{tmp_path / 'staging.db'}"
    upgrade(staging_db)
    with ExitStack() as running:
        staging_redis = PrivateRedis(tmp_path).start()
        running.callback(staging_redis.stop)
        stacks = {}
        for name, broker, db in (
            ("production", redis_url, database_url),
            ("staging", staging_redis.url, staging_db),
        ):
            workdir = tmp_path / name
            workdir.mkdir()
            stacks[name] = running.enter_context(
                running_stack(
                    redis_url=broker, database_url=db, simulators=simulators, tmp_path=workdir
                )
            )
        yield stacks


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_two_installations_on_one_vendor_account_each_send_every_message_once(
    installations: dict[str, Stack], simulators: SimulatorServer
) -> None:
    ids = {}
    for name, stack in installations.items():
        result = stack.producer.send_batch(requests_of(name))
        assert not result.rejected
        ids[name] = sorted(result.ids.values())
    assert ids["production"] == ids["staging"]  # the same row ids in both databases

    for stack in installations.values():
        assert stack.wait_settled(PER_INSTALLATION) == {"accepted": PER_INSTALLATION}

    for vendor in VENDORS:
        received = Counter(r.text for r in simulators[vendor].state.received)
        sent = Counter(
            r.text for name in installations for r in requests_of(name) if r.provider == vendor
        )
        assert received == sent, vendor
    for vendor in REFERENCED:
        at_vendor = Counter(r.reference for r in simulators[vendor].state.received)
        ours = [references(stack, vendor) for stack in installations.values()]
        assert not ours[0] & ours[1], vendor
        assert at_vendor == Counter(ours[0] | ours[1]), vendor
