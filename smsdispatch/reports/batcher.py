"""Many webhook requests, one transaction: the per-process report batcher.

Why: a report in a transaction of its own costs a commit (a WAL flush on
PostgreSQL) and a trip to a thread; one API process applied 226 reports a
second that way, less than the rate a campaign sends at. A webhook hands
its report here and awaits the outcome. The batcher writes what has
gathered in one transaction, `max_wait` after the first report of a batch
came or at once when `max_size` are waiting, and answers every request of
the batch only after the commit: a report answered 200 is durable, so a
process killed after answering loses nothing.

One batch is written at a time: while it is, the next one gathers, so
batches grow with the load and a report waits about one transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

In = TypeVar("In")
Out = TypeVar("Out")


@dataclass(frozen=True, slots=True)
class _Waiting(Generic[In, Out]):
    item: In
    answer: asyncio.Future[Out]


class Batcher(Generic[In, Out]):
    """Gathers items from concurrent requests; `write` takes a batch (in a
    thread: it blocks on the database) and returns one outcome per item, in
    order: an exception instance as an item's outcome is raised to that
    item's request alone. Bound to the event loop it is used on (a test client that runs
    each request on a new loop gets a fresh writer each time)."""

    def __init__(
        self,
        write: Callable[[Sequence[In]], Sequence[Out | Exception]],
        *,
        max_size: int,
        max_wait: float,
    ) -> None:
        self._write = write
        self.max_size, self.max_wait = max_size, max_wait
        self._waiting: list[_Waiting[In, Out]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._arrived = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: In) -> Out:
        """The item's outcome, once the batch holding it is written."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # Items left by a loop that has gone can never be answered there.
            self._waiting.clear()
            self._loop, self._arrived, self._writer = loop, asyncio.Event(), None
        answer: asyncio.Future[Out] = loop.create_future()
        answer.add_done_callback(_seen)
        self._waiting.append(_Waiting(item, answer))
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._write_batches(self._arrived))
        self._arrived.set()
        # A request that goes away (the vendor hung up) cancels its answer but
        # leaves its item in the batch: it is written all the same, and the
        # writer passes over an answer already done. (No shield: it cost each
        # request a second future.)
        return await answer

    async def _write_batches(self, arrived: asyncio.Event) -> None:
        while True:
            await arrived.wait()
            if len(self._waiting) < self.max_size:
                await asyncio.sleep(self.max_wait)
            batch = self._waiting[: self.max_size]
            del self._waiting[: self.max_size]
            if not self._waiting:
                arrived.clear()
            await self._write_one_batch(batch)

    async def _write_one_batch(self, batch: list[_Waiting[In, Out]]) -> None:
        failure: BaseException = RuntimeError("the batch writer stopped")
        try:
            outcomes = await asyncio.to_thread(self._write, [w.item for w in batch])
            for waiting, outcome in zip(batch, outcomes, strict=True):
                if waiting.answer.done():
                    continue
                if isinstance(outcome, Exception):
                    waiting.answer.set_exception(outcome)
                else:
                    waiting.answer.set_result(outcome)
        except Exception as exc:  # every request of the batch learns why
            log.warning("could not write a batch of %d: %s", len(batch), type(exc).__name__)
            failure = exc
        finally:
            # Whatever stopped the writer (an error, cancellation at shutdown),
            # no request of this batch is left waiting for good.
            for waiting in batch:
                if not waiting.answer.done():
                    waiting.answer.set_exception(failure)


def _seen(answer: asyncio.Future[Any]) -> None:
    """Marks an error as read: a request that went away cannot read it, and
    asyncio would otherwise log it as never retrieved."""
    if not answer.cancelled():
        answer.exception()
