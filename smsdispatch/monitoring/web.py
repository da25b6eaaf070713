"""GET /metrics for the HTTP API, and the collector built from settings.

Authentication is its own setting, not the API keys: Prometheus is not one of
the applications that submit messages, and the figures are counts by vendor,
outcome, status and queue only (no number, text or secret). With
METRICS_TOKEN empty the endpoint is open, as scrape targets usually are on a
private network; set it and Prometheus must send `Authorization: Bearer
<token>` (its scrape config's `authorization` block).
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import Annotated

import redis
from fastapi import APIRouter, Header, HTTPException, Response, status
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from smsdispatch.config.catalog import load_catalog
from smsdispatch.config.settings import Settings
from smsdispatch.monitoring.collector import ClusterCollector, cluster_registry
from smsdispatch.store.db import Database
from smsdispatch.vocabulary import names


def build_collector(settings: Settings, db: Database) -> ClusterCollector:
    """Every queue the Celery app declares: both lanes of each vendor, default,
    maintenance, callbacks."""
    catalog = load_catalog(settings.catalog_path)
    queues = [
        *names.queues(catalog.providers),
        names.DEFAULT_QUEUE,
        names.MAINTENANCE_QUEUE,
        names.CALLBACKS_QUEUE,
    ]
    return ClusterCollector(
        redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2),
        db,
        queues,
        db_cache_seconds=settings.metrics_db_cache_seconds,
        # The messages whose reports are late: as routing judges a slow vendor.
        awaiting_after_seconds=catalog.delivery.slow_after_seconds,
        awaiting_window_seconds=catalog.delivery.window_seconds,
    )


def metrics_router(settings: Settings, db: Database, extra: Sequence[Collector] = ()) -> APIRouter:
    registry = cluster_registry(build_collector(settings, db), extra)
    token = settings.metrics_token.get_secret_value().encode()
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    def metrics(authorization: Annotated[str | None, Header()] = None) -> Response:
        if token:
            given = (authorization or "").removeprefix("Bearer ").encode()
            if not hmac.compare_digest(given, token):
                raise HTTPException(
                    status.HTTP_401_UNAUTHORIZED,
                    "a valid bearer token is required",
                    headers={"WWW-Authenticate": "Bearer"},
                )
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router


def serve_metrics(
    settings: Settings, host: str, port: int, extra: Sequence[Collector] = ()
) -> None:
    """`smsdispatch metrics`: the same figures from a process of their own, for
    deployments that do not run the HTTP API. No token here: bind it to a
    private address."""
    from prometheus_client import start_http_server

    db = Database(settings.database_url)
    registry = cluster_registry(build_collector(settings, db), extra)
    server, thread = start_http_server(port, host, registry=registry)
    try:
        thread.join()
    finally:
        server.shutdown()
