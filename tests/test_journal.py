"""A vendor answer, once received, is never thrown away (DESIGN.md invariant 3).

Each row's result is journaled in Redis as its answer arrives; a worker that
cannot reach the database hands them to the sweeper; the sweeper writes them,
and gives a dead worker's stuck rows the results it kept instead of sending
them again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
import redis.asyncio as aioredis
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError

from smsdispatch.config.catalog import Catalog, ProviderEntry
from smsdispatch.config.settings import Settings
from smsdispatch.local.simulators import SimulatorServer
from smsdispatch.producer.api import Producer
from smsdispatch.producer.validation import SendRequest
from smsdispatch.sending import journal, pipeline, sweeper
from smsdispatch.sending.journal import JournalWriter
from smsdispatch.sending.pipeline import send_messages
from smsdispatch.sending.sweeper import sweep_outbox
from smsdispatch.sending.transitions import result_of
from smsdispatch.store.models import messages, send_attempts
from smsdispatch.store.outbox import claim
from smsdispatch.store.results import ClaimRef, SendResult
from smsdispatch.vocabulary import keys
from smsdispatch.vocabulary.outcomes import Outcome, OutcomeKind
from smsdispatch.workers.app import create_app
from smsdispatch.workers.runtime import Runtime


@pytest.fixture
def rt(
    settings: Settings, database_url: str, catalog: Catalog, redis_client: redis.Redis
) -> Iterator[Runtime]:
    settings = settings.model_copy(
        update={"database_url": database_url, "database_retry_seconds": 0.3}
    )
    runtime = Runtime(settings, catalog, create_app(settings))
    yield runtime
    runtime.close()


def store(rt: Runtime, provider: str, count: int) -> list[int]:
    producer = Producer(rt.settings, rt.catalog, rt.db, rt.celery, clock=rt.clock)
    requests = [SendRequest(f"+2782123{i:04d}", f"text {i}", provider) for i in range(count)]
    return list(producer.send_batch(requests).ids.values())


def row(rt: Runtime, mid: int) -> tuple[str, str | None, int]:
    m = messages.c
    with rt.db.session() as s:
        got = s.execute(select(m.status, m.tracking_id, m.attempts).where(m.id == mid)).one()
    return got.status, got.tracking_id, got.attempts


def attempt_rows(rt: Runtime, mid: int) -> int:
    with rt.db.session() as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(send_attempts)
                .where(send_attempts.c.message_id == mid)
            )
            or 0
        )


def claim_as_a_dead_worker(rt: Runtime, ids: list[int], token: str = "dead") -> list[ClaimRef]:  # noqa: S107
    """Claimed long enough ago that the sweeper takes its worker for dead."""
    long_ago = rt.clock() - timedelta(seconds=rt.settings.sending_deadline_seconds + 5)
    with rt.db.session() as s, s.begin():
        claimed = claim(s, ids, rt.clock(), token)
        s.execute(update(messages).where(messages.c.id.in_(ids)).values(claimed_at=long_ago))
    return [c.ref for c in claimed]


def accepted(rt: Runtime, claimed: ClaimRef, tracking_id: str) -> SendResult:
    entry = ProviderEntry(name="skycore")
    return result_of(claimed, Outcome.accepted(tracking_id), entry, rt.clock())


def keep(client: redis.Redis, key: str, *results: SendResult) -> None:
    client.hset(key, mapping={r.claim: r.to_json() for r in results})


def test_a_result_reads_back_from_its_json_as_it_was(rt: Runtime) -> None:
    outcome = Outcome(OutcomeKind.RETRY, code="-1", reason="System Error", retry_after=1.5)
    result = result_of(ClaimRef(7, "t", 2), outcome, ProviderEntry(name="cue"), rt.clock())

    assert SendResult.from_json(result.to_json()) == result


def test_results_arriving_together_are_journaled_in_one_write(
    rt: Runtime, redis_client: redis.Redis
) -> None:
    results = [accepted(rt, ClaimRef(i, "t", 1), f"T{i}") for i in range(50)]

    async def write() -> None:
        client = aioredis.Redis.from_url(rt.settings.redis_url)
        writer = JournalWriter(client)
        for result in results:
            writer.add([result])
        await writer.drain()
        await client.aclose()

    before = redis_client.info("commandstats").get("cmdstat_hset", {}).get("calls", 0)
    asyncio.run(write())
    after = redis_client.info("commandstats")["cmdstat_hset"]["calls"]

    assert after - before == 1
    assert redis_client.hlen(keys.JOURNAL) == 50


def test_a_batch_in_the_database_leaves_nothing_in_the_journal(
    rt: Runtime, simulators: SimulatorServer, redis_client: redis.Redis
) -> None:
    ids = store(rt, "skycore", 5)

    send_messages(rt, ids)

    assert {row(rt, mid)[0] for mid in ids} == {"accepted"}
    assert redis_client.hlen(keys.JOURNAL) == 0


def test_results_the_database_refused_are_handed_to_the_sweeper_and_written_once_it_is_back(
    rt: Runtime,
    simulators: SimulatorServer,
    redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = store(rt, "restcomm", 3)

    def refuse(*_: object, **__: object) -> None:
        raise OperationalError("UPDATE", {}, Exception("server closed the connection"))

    with monkeypatch.context() as away:
        away.setattr(pipeline, "write_results", refuse)
        away.setattr(pipeline, "write_results_once", refuse)
        send_messages(rt, ids)
    assert {row(rt, mid)[0] for mid in ids} == {"sending"}
    assert redis_client.hlen(keys.ORPHANED) == 3
    assert redis_client.hlen(keys.JOURNAL) == 0

    result = sweep_outbox(rt)

    tracking_ids = {r.tracking_id for r in simulators["restcomm"].state.received}
    assert {row(rt, mid)[1] for mid in ids} == tracking_ids
    assert {row(rt, mid)[0] for mid in ids} == {"accepted"}
    assert result.recovered == {("restcomm", "orphaned"): 3}
    assert [attempt_rows(rt, mid) for mid in ids] == [1, 1, 1]
    assert redis_client.hlen(keys.ORPHANED) == 0
    assert len(simulators["restcomm"].state.received) == 3


def test_a_dead_workers_journaled_result_is_written_instead_of_sending_again(
    rt: Runtime, simulators: SimulatorServer, redis_client: redis.Redis
) -> None:
    [mid] = store(rt, "skycore", 1)
    [claimed] = claim_as_a_dead_worker(rt, [mid])
    # It sent the message and journaled the result, then died before writing it.
    keep(redis_client, keys.JOURNAL, accepted(rt, claimed, "SKY-1"))

    result = sweep_outbox(rt)

    assert row(rt, mid) == ("accepted", "SKY-1", 1)
    assert result.recovered == {("skycore", "journaled"): 1}
    assert redis_client.hlen(keys.JOURNAL) == 0
    assert simulators["skycore"].state.received == []


def test_a_stuck_row_whose_result_was_handed_over_is_not_sent_again(
    rt: Runtime, simulators: SimulatorServer, redis_client: redis.Redis
) -> None:
    """More handed-over results than one sweep writes: those left over are
    still found when their rows come up as stuck."""
    rt.settings.sweep_batch_limit = 1
    first, second = store(rt, "skycore", 2)
    claims = claim_as_a_dead_worker(rt, [first, second])
    keep(redis_client, keys.ORPHANED, *(accepted(rt, c, f"SKY-{c.id}") for c in claims))

    sweep_outbox(rt)
    sweep_outbox(rt)

    assert row(rt, first)[0] == row(rt, second)[0] == "accepted"
    assert simulators["skycore"].state.received == []


def test_a_result_kept_for_an_earlier_send_is_not_written_onto_a_later_one(
    rt: Runtime, simulators: SimulatorServer, redis_client: redis.Redis
) -> None:
    [mid] = store(rt, "skycore", 1)
    # An earlier send was throttled (a hold gives its attempt back); its
    # journal copy outlived the batch.
    throttled = ClaimRef(mid, "earlier", 1)
    held = result_of(
        throttled, Outcome(OutcomeKind.RATE_LIMITED, code="429"), ProviderEntry(name="skycore"),
        rt.clock(),
    )  # fmt: skip
    keep(redis_client, keys.JOURNAL, held)
    claim_as_a_dead_worker(rt, [mid], token="later")  # attempts 1 again

    result = sweep_outbox(rt)

    assert result.recovered == {("skycore", "resend"): 1}
    assert row(rt, mid)[0] == "queued"


def test_a_dead_workers_row_with_no_kept_result_is_sent_again_and_counted(
    rt: Runtime, redis_client: redis.Redis
) -> None:
    [mid] = store(rt, "skycore", 1)
    claim_as_a_dead_worker(rt, [mid])

    result = sweep_outbox(rt)

    assert row(rt, mid)[0] == "queued"
    assert result.recovered == {("skycore", "resend"): 1}
    assert redis_client.hget(keys.METRICS_RECOVERIES, "skycore|resend") == b"1"


def test_a_dead_workers_restcomm_row_waits_for_restcomm_to_be_asked(rt: Runtime) -> None:
    [mid] = store(rt, "restcomm", 1)
    claim_as_a_dead_worker(rt, [mid])

    result = sweep_outbox(rt)

    assert row(rt, mid)[0] == "unknown"
    assert result.recovered == {("restcomm", "ask"): 1}


def test_no_stuck_row_is_reclaimed_while_the_journal_cannot_be_read(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    [mid] = store(rt, "skycore", 1)
    claim_as_a_dead_worker(rt, [mid])

    def unreachable(*_: object, **__: object) -> None:
        raise redis.ConnectionError("Connection refused")

    monkeypatch.setattr(journal, "orphans", unreachable)
    sweep_outbox(rt)

    assert row(rt, mid)[0] == "sending"


def test_a_sweep_does_nothing_while_another_is_running(
    rt: Runtime, redis_client: redis.Redis
) -> None:
    [mid] = store(rt, "skycore", 1)
    claim_as_a_dead_worker(rt, [mid])
    redis_client.set(keys.SWEEP_LOCK, "another sweep", px=10_000)

    assert sweep_outbox(rt) == sweeper.SweepResult()
    assert row(rt, mid)[0] == "sending"


def test_journal_copies_left_behind_are_pruned_but_not_those_of_rows_still_sending(
    rt: Runtime, simulators: SimulatorServer, redis_client: redis.Redis
) -> None:
    written, sending = store(rt, "skycore", 2)
    send_messages(rt, [written])
    [live] = claim_as_a_dead_worker(rt, [sending])
    leftovers = [
        accepted(rt, ClaimRef(written, "spent", 1), "SKY-W"),  # its removal failed
        accepted(rt, ClaimRef(sending, "older", 1), "SKY-S"),  # an earlier claim's
        accepted(rt, live, "SKY-S"),
    ]
    keep(redis_client, keys.JOURNAL, *leftovers)

    sweeper._prune_journal(rt)

    assert redis_client.hkeys(keys.JOURNAL) == [live.key.encode()]
