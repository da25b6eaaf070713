"""Routed messages through real workers and the simulators: each sent once, where routing chose."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import redis
from sqlalchemy import select

from smsdispatch.local.simulators import SimulatorServer
from smsdispatch.producer.validation import SendRequest
from smsdispatch.routing.health import HealthBoard
from smsdispatch.store.models import messages
from smsdispatch.vocabulary.outcomes import OutcomeKind
from tests.integration.stack import running_stack

pytestmark = pytest.mark.slow

DEFAULT_ROUTE = ("cue", "messangi", "restcomm", "skycore")


def received(simulators: SimulatorServer) -> dict[str, Counter[str]]:
    """Each vendor's received recipients, as a multiset: one twice shows as 2."""
    return {
        v: Counter(r.to.lstrip("+") for r in simulators[v].state.received)
        for v in (*DEFAULT_ROUTE, "smsbuddy")
    }


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_routed_messages_are_sent_once_each_by_the_vendor_their_route_chose(
    redis_client: redis.Redis,
    redis_url: str,
    database_url: str,
    simulators: SimulatorServer,
    tmp_path: Path,
) -> None:
    # An open breaker at Restcomm: routing sends it nothing while it is open.
    catalog = {"breaker": {"cooldown_seconds": 600}}
    with running_stack(
        redis_url=redis_url,
        database_url=database_url,
        simulators=simulators,
        tmp_path=tmp_path,
        catalog=catalog,
    ) as stack:
        HealthBoard(redis_client, stack.catalog.breaker).record(
            "restcomm", [OutcomeKind.RETRY] * stack.catalog.breaker.min_volume
        )
        requests = [SendRequest(f"+1202555{i:04d}", f"routed {i}") for i in range(150)]
        requests += [SendRequest(f"+9198765{i:05d}", f"india {i}") for i in range(10)]
        result = stack.producer.send_batch(requests)
        assert not result.rejected
        assert stack.wait_settled(160) == {"accepted": 160}
        chosen = Counter(provider for _, provider, _, _ in stack.rows())
        with stack.db.session() as session:
            routed = session.execute(select(messages.c.provider, messages.c.recipient)).all()

    # The vendors received exactly what routing gave them: nothing twice,
    # nothing at a vendor it was not routed to.
    expected = {
        v: Counter(r.lstrip("+") for p, r in routed if p == v) for v in received(simulators)
    }
    assert received(simulators) == expected
    assert chosen["smsbuddy"] == 10  # India's route
    assert chosen["restcomm"] == 0  # breaker open
    assert all(chosen[v] > 0 for v in ("cue", "messangi", "skycore"))
