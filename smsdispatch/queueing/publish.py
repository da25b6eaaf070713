"""Putting message ids on the broker, in chunks, on each vendor's queue."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from celery import Celery

from smsdispatch.config.catalog import Catalog
from smsdispatch.vocabulary import names


def publish(celery: Celery, catalog: Catalog, ids: Iterable[tuple[int, str, int]]) -> int:
    """Enqueue (id, provider, priority) triples as send tasks; return how many tasks.

    Chunks follow each vendor's `task_size`: a worker sends one chunk
    concurrently, and the broker holds one message per chunk, not per SMS.
    Urgent messages go on the vendor's priority queue.
    """
    by_lane: dict[tuple[str, int], list[int]] = defaultdict(list)
    for message_id, provider, priority in ids:
        by_lane[(provider, 1 if priority > 0 else 0)].append(message_id)
    tasks = 0
    with celery.producer_or_acquire() as producer:
        for (provider, lane), provider_ids in by_lane.items():
            size = catalog.get(provider).task_size
            queue = names.provider_queue(provider, lane)
            for start in range(0, len(provider_ids), size):
                celery.send_task(
                    names.SEND,
                    args=[provider_ids[start : start + size]],
                    queue=queue,
                    producer=producer,
                )
                tasks += 1
    return tasks
