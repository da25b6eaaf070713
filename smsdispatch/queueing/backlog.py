"""How many message ids Redis holds: waiting on queues and reserved by workers.

The measure of invariant 4 (a bounded backlog). Each send task's body names
its message ids; kombu's Redis transport keeps waiting tasks in one list per
queue and reserved (prefetched, unacknowledged) ones in the `unacked` hash.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterable
from typing import Any

import redis

UNACKED = "unacked"  # kombu's Redis transport: reserved messages


def ids_held(client: redis.Redis, queues: Iterable[str]) -> int:
    """How many message ids are in the tasks on these queues and in reserved tasks."""
    return len(held_ids(client, queues))


def held_ids(client: redis.Redis, queues: Iterable[str]) -> list[int]:
    """The message ids themselves (an id sent twice is listed twice)."""
    envelopes: list[Any] = []
    for queue in queues:
        envelopes += [json.loads(raw) for raw in client.lrange(queue, 0, -1)]
    envelopes += [json.loads(raw)[0] for raw in client.hvals(UNACKED)]
    return [i for envelope in envelopes for i in _ids_in(envelope)]


def _ids_in(envelope: dict[str, Any]) -> list[int]:
    body = envelope["body"]
    if envelope.get("properties", {}).get("body_encoding") == "base64":
        body = base64.b64decode(body)
    args = json.loads(body)[0]
    # A send task's first argument is its ids; beat's tasks have none.
    return list(args[0]) if args and isinstance(args[0], list) else []


class RedisProbe:
    """Samples, in a thread, the most ids the queues held and Redis' peak memory.

    For tests and benchmarks of invariant 4: used as a context manager around
    the work whose backlog is being measured.
    """

    def __init__(self, client: redis.Redis, queues: list[str], interval: float = 0.1) -> None:
        self.client, self.queues, self.interval = client, queues, interval
        self.peak_ids = 0
        self.peak_memory = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RedisProbe:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak_ids = max(self.peak_ids, ids_held(self.client, self.queues))
            memory = int(self.client.info("memory")["used_memory"])
            self.peak_memory = max(self.peak_memory, memory)
