"""A vendor answer, once received, is never thrown away (DESIGN.md invariant 3).

Answers are journaled in Redis as they arrive; a worker that cannot reach
the database hands them to the sweeper; the sweeper writes them, and gives a
dead worker's stuck rows the answers it journaled instead of sending again.
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

from config.catalog import Catalog
from config.settings import Settings
from producer.api import Producer
from producer.validation import SendRequest
from providers.outcomes import Outcome, OutcomeKind
from sending import journal, pipeline, sweeper
from sending.journal import Answer, JournalWriter
from sending.pipeline import send_messages
from sending.sweeper import sweep_outbox
from simulators.server import SimulatorServer
from store.models import messages, send_attempts
from store.outbox import claim
from workers import keys
from workers.app import create_app
from workers.runtime import Runtime


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


def claim_as_a_dead_worker(rt: Runtime, ids: list[int]) -> None:
    """Claimed long enough ago that the sweeper takes its worker for dead."""
    long_ago = rt.clock() - timedelta(seconds=rt.settings.sending_deadline_seconds + 5)
    with rt.db.session() as s, s.begin():
        claim(s, ids, rt.clock())
        s.execute(update(messages).where(messages.c.id.in_(ids)).values(claimed_at=long_ago))


def test_an_answer_reads_back_from_its_json_as_it_was(rt: Runtime) -> None:
    outcome = Outcome(OutcomeKind.RETRY, code="-1", reason="System Error", retry_after=1.5)
    answer = Answer(7, 2, "cue", outcome, rt.clock())

    assert Answer.from_json(answer.to_json()) == answer


def test_answers_arriving_together_are_journaled_in_one_write(
    rt: Runtime, redis_client: redis.Redis
) -> None:
    now = rt.clock()
    answers = [Answer(i, 1, "cue", Outcome.accepted(f"T{i}"), now) for i in range(50)]
    deferred = Answer(99, 1, "cue", Outcome(OutcomeKind.DEFERRED, code="rate_limit"), now)

    async def write() -> None:
        client = aioredis.Redis.from_url(rt.settings.redis_url)
        writer = JournalWriter(client)
        for answer in [*answers, deferred]:
            writer.add([answer])
        await writer.drain()
        await client.aclose()

    before = redis_client.info("commandstats").get("cmdstat_hset", {}).get("calls", 0)
    asyncio.run(write())
    after = redis_client.info("commandstats")["cmdstat_hset"]["calls"]

    assert after - before == 1
    assert redis_client.hlen(keys.JOURNAL) == 50  # a deferral sent nothing: not kept


def test_a_batch_in_the_database_leaves_nothing_in_the_journal(
    rt: Runtime, simulators: SimulatorServer, redis_client: redis.Redis
) -> None:
    ids = store(rt, "skycore", 5)

    send_messages(rt, ids)

    assert {row(rt, mid)[0] for mid in ids} == {"accepted"}
    assert redis_client.hlen(keys.JOURNAL) == 0


def test_answers_the_database_refused_are_handed_to_the_sweeper_and_written_once_it_is_back(
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


def test_a_dead_workers_journaled_answer_is_written_instead_of_sending_again(
    rt: Runtime, simulators: SimulatorServer, redis_client: redis.Redis
) -> None:
    [mid] = store(rt, "skycore", 1)
    claim_as_a_dead_worker(rt, [mid])
    # It sent the message and journaled the answer, then died before writing it.
    answer = Answer(mid, 1, "skycore", Outcome.accepted("SKY-1"), rt.clock())
    redis_client.hset(keys.JOURNAL, answer.claim, answer.to_json())

    result = sweep_outbox(rt)

    assert row(rt, mid) == ("accepted", "SKY-1", 1)
    assert result.recovered == {("skycore", "journaled"): 1}
    assert redis_client.hlen(keys.JOURNAL) == 0
    assert simulators["skycore"].state.received == []


def test_a_dead_workers_row_with_no_kept_answer_is_sent_again_and_counted(
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


def test_journal_copies_left_behind_are_pruned_but_not_those_of_rows_still_sending(
    rt: Runtime, simulators: SimulatorServer, redis_client: redis.Redis
) -> None:
    written, sending = store(rt, "skycore", 2)
    send_messages(rt, [written])
    claim_as_a_dead_worker(rt, [sending])
    long_ago = rt.clock() - timedelta(seconds=rt.settings.sending_deadline_seconds * 3)
    leftovers = [
        Answer(written, 1, "skycore", Outcome.accepted("SKY-W"), long_ago),  # its removal failed
        Answer(sending, 9, "skycore", Outcome.accepted("SKY-S"), long_ago),  # an older claim
        Answer(sending, 1, "skycore", Outcome.accepted("SKY-S"), long_ago),
    ]
    redis_client.hset(keys.JOURNAL, mapping={a.claim: a.to_json() for a in leftovers})

    sweeper._prune_journal(rt, rt.clock())

    assert redis_client.hkeys(keys.JOURNAL) == [f"{sending}:1".encode()]
