"""Settings the tests run with: fixed test credentials, no `.env` file."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy.engine import make_url

from smsdispatch.config.settings import Settings

TEST_CREDENTIALS: dict[str, dict[str, str]] = {
    "cue": {"username": "cue-user", "password": "cue-pass-s3cret"},
    "messangi": {"api_key": "messangi-key-s3cret"},
    "smsbuddy": {"key": "smsbuddy-key-s3cret"},
    "restcomm": {
        "account_sid": "ACtest0000000000000000000000000000",
        "auth_token": "restcomm-token-s3cret",
    },
    "skycore": {"api_key": "skycore-key-s3cret"},
}


def for_this_worker(redis_url: str, postgres_url: str) -> tuple[str, str]:
    """Under pytest-xdist (`make test` runs the fast tests on two processes),
    each worker flushes and rebuilds a Redis database and a PostgreSQL
    database of its own: the Redis database numbered below the given one
    (15 -> 14 for gw0, 13 for gw1), the PostgreSQL one suffixed (_gw0)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1", ... or ""
    if not worker:
        return redis_url, postgres_url
    index = int(worker.removeprefix("gw"))
    redis_parts = urlsplit(redis_url)
    redis_db = int(redis_parts.path.strip("/") or 0) - 1 - index
    if redis_db < 0:
        raise RuntimeError(f"TEST_REDIS_URL {redis_url}: no database below it for {worker}")
    postgres = make_url(postgres_url)
    return (
        redis_parts._replace(path=f"/{redis_db}").geturl(),
        postgres.set(database=f"{postgres.database}_{worker}").render_as_string(
            hide_password=False
        ),
    )


REDIS_URL, POSTGRES_URL = for_this_worker(
    os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
    os.environ.get(
        "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/smsdispatch_test"
    ),
)


# Skycore's endpoint has no default (its document names none). Tests that send
# point it at the simulators (`smsdispatch.simulators.app.pointed_at`); the others only
# need it set. `.invalid` never resolves.
TEST_SKYCORE_URL = "https://skycore.invalid/API"


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"redis_url": REDIS_URL, **TEST_CREDENTIALS}
    values["skycore"] = {**values["skycore"], "base_url": TEST_SKYCORE_URL}
    values.update(overrides)
    return Settings(_env_file=None, **values)


def unreachable_redis() -> redis.Redis:
    """A client of a Redis nobody runs, failing at once: redis-py's own
    retries (three, with back-off) would cost each test seconds, and what
    is tested is what we do when Redis is away, not how long it takes to say so."""
    return redis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)
    )
