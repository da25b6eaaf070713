"""Liveness and readiness, for a load balancer, an orchestrator or an operator.

    GET /healthz   200 {"status": "alive"}: the process answers; no dependency is asked
    GET /readyz    200 when the database answers and is at the migrations' head and
                   Redis answers; otherwise 503 naming each check that failed:
                   {"status": "unready", "checks": {"database": "unreachable (OperationalError)",
                    "migrations": "...", "redis": "ok"}}

Both are unauthenticated (a probe holds no key) and say nothing secret: no
URL, host or password, only which check failed and the exception's type.

Why these choices:
- /healthz asks nothing: a database outage must not make an orchestrator
  restart every API process (a restart cures nothing and drops requests in
  flight); /readyz takes the process out of a load balancer's rotation instead.
- Each check has its deadline (PROBE_TIMEOUT_SECONDS): a database that hangs
  (a partition, a frozen host) answers 503 in about that time, not after
  libpq's keepalive gives up. The checks run on a small pool of their own, so
  a probe stuck on a hung connection never takes a thread the API's requests
  need; while every probe thread is stuck the next probe fails in time too.
- The database check uses the API's own pool (pool_pre_ping replaces a
  dropped connection), so "ready" means this process's connections work.
- Migrations: an API on a database behind the code's head would fail on
  its first request; the revision is read with Alembic's own query.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from fastapi import APIRouter, status
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from smsdispatch.config.settings import Settings
from smsdispatch.store.db import Database
from smsdispatch.store.migrate import alembic_config

PROBE_TIMEOUT_SECONDS = 2.0
# Threads for the checks: two per probe at most, a few probes stuck at once.
PROBE_THREADS = 4
OK = "ok"

Check = Callable[[], str]


def health_router(settings: Settings, db: Database) -> APIRouter:
    router = APIRouter(tags=["health"])
    checks = readiness_checks(settings, db)
    pool = ThreadPoolExecutor(PROBE_THREADS, thread_name_prefix="readyz")

    # Out of the OpenAPI document, like /metrics: operations' endpoints, not the API's.
    @router.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        """Alive: the process answers. Nothing else is asked."""
        return {"status": "alive"}

    @router.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        """Ready: the database answers at the migrations' head and Redis answers."""
        results = await run_checks(checks, pool, PROBE_TIMEOUT_SECONDS)
        ready = all(v == OK for v in results.values())
        return JSONResponse(
            {"status": "ready" if ready else "unready", "checks": results},
            status_code=status.HTTP_200_OK if ready else status.HTTP_503_SERVICE_UNAVAILABLE,
        )

    return router


def readiness_checks(settings: Settings, db: Database) -> dict[str, Check]:
    heads = set(ScriptDirectory.from_config(alembic_config(db.url)).get_heads())
    client = redis.Redis.from_url(
        settings.redis_url,
        socket_timeout=PROBE_TIMEOUT_SECONDS,
        socket_connect_timeout=PROBE_TIMEOUT_SECONDS,
    )
    return {"database": lambda: database_check(db, heads), "redis": lambda: redis_check(client)}


async def run_checks(
    checks: dict[str, Check], pool: ThreadPoolExecutor, deadline: float
) -> dict[str, str]:
    """Every check at once, all answered within `deadline` seconds: a late one reads
    "no answer" and is left to finish on its thread."""
    loop = asyncio.get_running_loop()
    futures = {name: loop.run_in_executor(pool, check) for name, check in checks.items()}
    done, _ = await asyncio.wait(futures.values(), timeout=deadline)
    return {name: _outcome(future, done, deadline) for name, future in futures.items()}


def _outcome(future: asyncio.Future[str], done: set[asyncio.Future[str]], timeout: float) -> str:
    if future not in done:
        return f"no answer within {timeout:g}s"
    exc = future.exception()
    return future.result() if exc is None else f"failed ({type(exc).__name__})"


def database_check(db: Database, heads: set[str]) -> str:
    try:
        with db.engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
    except SQLAlchemyError as exc:
        return _unreachable(exc)
    if current != heads:
        have = ", ".join(sorted(current)) or "no tables"
        return f"not migrated: at {have}, head is {', '.join(sorted(heads))}"
    return OK


def redis_check(client: redis.Redis) -> str:
    try:
        client.ping()
    except redis.RedisError as exc:
        return _unreachable(exc)
    return OK


def _unreachable(exc: Any) -> str:
    # The type only: a driver's message can carry the host, user or URL.
    return f"unreachable ({type(exc).__name__})"
