"""The report batcher: many requests, one write, each answered after it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from smsdispatch.reports.batcher import Batcher


class Writes:
    """Records each batch written; `committed` holds what has been written."""

    def __init__(self, fail: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.committed: set[int] = set()
        self.fail = fail
        self.lock = threading.Lock()

    def __call__(self, batch: Sequence[int]) -> list[str]:
        if self.fail:
            raise RuntimeError("the database refused")
        with self.lock:
            self.batches.append(list(batch))
            self.committed.update(batch)
        return [f"done {n}" for n in batch]


def test_concurrent_requests_share_one_write_and_each_gets_its_own_outcome() -> None:
    writes = Writes()
    batcher: Batcher[int, str] = Batcher(writes, max_size=500, max_wait=0.01)

    async def go() -> list[str]:
        return list(await asyncio.gather(*(batcher.submit(n) for n in range(100))))

    assert asyncio.run(go()) == [f"done {n}" for n in range(100)]
    assert len(writes.batches) == 1


def test_no_request_is_answered_before_its_item_is_written() -> None:
    writes = Writes()
    batcher: Batcher[int, str] = Batcher(writes, max_size=7, max_wait=0.001)

    async def one(n: int) -> bool:
        await batcher.submit(n)
        return n in writes.committed

    async def go() -> list[bool]:
        return list(await asyncio.gather(*(one(n) for n in range(50))))

    assert all(asyncio.run(go()))
    assert max(len(b) for b in writes.batches) <= 7  # a full batch goes at once
    assert sorted(n for b in writes.batches for n in b) == list(range(50))


def test_a_request_that_goes_away_still_has_its_item_written_and_the_others_answered() -> None:
    writes = Writes()
    batcher: Batcher[int, str] = Batcher(writes, max_size=500, max_wait=0.05)

    async def go() -> list[str]:
        gone = asyncio.ensure_future(batcher.submit(0))
        others = [asyncio.ensure_future(batcher.submit(n)) for n in (1, 2)]
        await asyncio.sleep(0)  # all three are in the batch
        gone.cancel()  # the vendor hung up before the write
        return list(await asyncio.gather(*others))

    assert asyncio.run(go()) == ["done 1", "done 2"]
    assert writes.committed == {0, 1, 2}


def test_a_failed_write_fails_every_request_of_its_batch() -> None:
    batcher: Batcher[int, str] = Batcher(Writes(fail=True), max_size=500, max_wait=0.01)

    async def go() -> list[str | BaseException]:
        return list(
            await asyncio.gather(*(batcher.submit(n) for n in range(3)), return_exceptions=True)
        )

    outcomes = asyncio.run(go())
    assert all(isinstance(o, RuntimeError) for o in outcomes)


def test_the_batcher_keeps_working_after_a_failed_write() -> None:
    writes = Writes(fail=True)
    batcher: Batcher[int, str] = Batcher(writes, max_size=500, max_wait=0.001)

    async def go() -> str:
        with pytest.raises(RuntimeError):
            await batcher.submit(1)
        writes.fail = False
        return await batcher.submit(2)

    assert asyncio.run(go()) == "done 2"
