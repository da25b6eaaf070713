"""What a use case needs from the process it runs in, as small protocols.

The per-process wiring (`workers/runtime.py`: `Runtime`) satisfies them. The
use cases (sending, campaigns, reports) are typed against these, not against
the wiring, so the layers point down (pyproject.toml's import contract) and a
test may hand in its own.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, Protocol, TypeVar

import redis
import redis.asyncio as aioredis
from celery import Celery

from smsdispatch.config.catalog import Catalog
from smsdispatch.config.settings import Settings
from smsdispatch.limits.gcra import RedisLimiter
from smsdispatch.monitoring.counters import MetricsBuffer
from smsdispatch.providers.base import Adapter
from smsdispatch.routing.delivery import DeliveryBoard
from smsdispatch.routing.health import HealthBoard
from smsdispatch.routing.router import Router
from smsdispatch.store.clock import Clock
from smsdispatch.store.db import Database

T = TypeVar("T")


class Services(Protocol):
    """Settings, the catalog, the database and its clock, Redis, the broker."""

    settings: Settings
    catalog: Catalog
    db: Database
    clock: Clock
    redis: redis.Redis

    @property
    def celery(self) -> Celery: ...


class VendorServices(Services, Protocol):
    """Services plus what talking to vendors takes: the event loop that
    keeps the HTTP pool warm, an adapter per vendor, the limiter, counters,
    the vendors' shared health (routing/health.py) and delivery figures
    (routing/delivery.py), and routing's snapshot for failover
    (sending/failover.py)."""

    metrics: MetricsBuffer

    def run(self, coro: Coroutine[Any, Any, T]) -> T: ...

    def adapter(self, provider: str) -> Adapter[Any]: ...

    @property
    def aioredis(self) -> aioredis.Redis: ...

    @property
    def limiter(self) -> RedisLimiter: ...

    @property
    def health(self) -> HealthBoard: ...

    @property
    def router(self) -> Router: ...

    @property
    def delivery(self) -> DeliveryBoard: ...

    @property
    def unconfigured(self) -> dict[str, bool]: ...
