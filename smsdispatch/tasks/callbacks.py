"""Status callbacks: beat's sweep hands out due ones; `deliver` posts them.

Both run on the `callbacks` queue, so a worker serving it (any worker
started by `make worker`, or one of its own) does the whole job, and a
receiver that hangs never delays a send: sends are on the vendors' queues.
Task arguments are callback ids only: the URL, the body and the secret are
read from the database by the worker.
"""

from __future__ import annotations

from celery import shared_task

from smsdispatch.callbacks.worker import sweep as due_callbacks
from smsdispatch.monitoring.maintenance import counted
from smsdispatch.queueing.periodic import run_periodic
from smsdispatch.vocabulary import names
from smsdispatch.workers.runtime import Runtime, get_runtime


@shared_task(name=names.CALLBACKS_DELIVER, send_events=False)
def deliver(callback_ids: list[int]) -> None:
    """Claim these callbacks and post them on the process's loop (not waited for)."""
    rt = get_runtime()
    claimed = rt.callbacks.claim(callback_ids)
    if claimed.due:
        rt.spawn(rt.callbacks.deliver(claimed))


def hand_out(rt: Runtime) -> int:
    """Enqueue due callbacks in tasks of CALLBACK_TASK_SIZE ids; how many."""
    ids = due_callbacks(rt.db, rt.clock, rt.settings)
    size = rt.settings.callback_task_size
    celery = rt.celery
    with celery.producer_or_acquire() as producer:
        for start in range(0, len(ids), size):
            celery.send_task(
                names.CALLBACKS_DELIVER,
                args=[ids[start : start + size]],
                queue=names.CALLBACKS_QUEUE,
                producer=producer,
            )
    return len(ids)


@shared_task(name=names.CALLBACKS_SWEEP, send_events=False)
def sweep() -> None:
    """Hand out due status callbacks (new, retries, and those of dead workers)."""
    rt = get_runtime()
    run_periodic(
        rt.redis,
        names.CALLBACKS_SWEEP,
        rt.settings.callback_interval_seconds,
        counted(rt.redis, names.CALLBACKS_SWEEP, lambda: hand_out(rt)),
    )
