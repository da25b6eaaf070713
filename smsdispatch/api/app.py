"""The HTTP API: submit messages, read their status. Authenticated with API keys.

    POST /v1/messages         one message  -> 202 {"id": ...}      | 422 naming the field
    POST /v1/messages/batch   many         -> 202 accepted + rejected (by index, with why)
    GET  /v1/messages/{id}    its status, vendor tracking id and timestamps
    GET  /v1/messages         search; POST /v1/messages/{id}/cancel (api/message_search.py)
    /v1/vendors...            vendors' pauses: list, pause, resume (api/vendors.py)
    /v1/routes...             routes as routing sees them; pin or drain a vendor (api/routes.py)
    GET  /metrics             Prometheus (monitoring/web.py: METRICS_TOKEN, not API keys)
    GET|POST /reports/{vendor}/{token}   delivery reports (api/reports.py)
    /v1/campaigns...          campaigns: create, upload a CSV, preview, control (api/campaigns.py)
    /v1/callbacks...          status callbacks: list failed ones, replay (api/callbacks.py)
    GET  /openapi.json        the contract; /docs (Swagger UI) and /redoc from packaged assets
    GET  /healthz, /readyz    alive; ready (database migrated, Redis): api/health.py

Keys travel in the `X-API-Key` header: those of the environment's API_KEYS
are compared in constant time, the others looked up by hash among the keys
`smsdispatch keys` manages (store/api_keys.py), on every request, so a
revoked key is refused from the next one on. With no keys at all every
request is refused.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, HTTPException, status
from fastapi.exceptions import RequestValidationError
from fastapi.params import Depends as Dependency
from fastapi.security import APIKeyHeader
from fastapi_offline import FastAPIOffline
from redis import Redis, RedisError

from smsdispatch.api.access_log import AccessLog
from smsdispatch.api.body_size import MaxBodySize
from smsdispatch.api.callbacks import callbacks_router, key_callbacks_of
from smsdispatch.api.campaigns import campaigns_router
from smsdispatch.api.catalog_rules import rules as catalog_rules
from smsdispatch.api.contract import install as install_contract
from smsdispatch.api.errors import database_away, redis_away, validation_failed
from smsdispatch.api.health import health_router
from smsdispatch.api.message_search import message_search_router
from smsdispatch.api.no_store import NoStore
from smsdispatch.api.reports import reports_router
from smsdispatch.api.routes import routes_router
from smsdispatch.api.schemas import (
    Accepted,
    BatchIn,
    BatchOut,
    MessageIn,
    MessageStatusOut,
    OneMessageIn,
    Rejected,
    RowId,
)
from smsdispatch.api.vendors import vendors_router
from smsdispatch.campaigns.service import Campaigns
from smsdispatch.config.catalog import load_catalog
from smsdispatch.config.settings import Settings, warn_unconfigured
from smsdispatch.monitoring.web import metrics_router
from smsdispatch.producer.api import Producer
from smsdispatch.producer.validation import SendRequest
from smsdispatch.routing.delivery import DeliveryBoard
from smsdispatch.routing.metrics import routing_collector
from smsdispatch.store.api_keys import KeyCallbacks, active_key_name
from smsdispatch.store.db import DATABASE_AWAY, Database
from smsdispatch.store.messages import message_status_row
from smsdispatch.workers.app import create_app as create_celery

DOCS_ASSETS = "/docs/assets"
RECIPIENT_UPLOAD = re.compile(r"/v1/campaigns/\d+/recipients")
API_KEY = APIKeyHeader(name="X-API-Key", auto_error=False)
log = logging.getLogger(__name__)


def create_app(settings: Settings) -> FastAPI:
    catalog = load_catalog(settings.catalog_path)
    # The producer refuses messages for a vendor without its base URL: say so
    # once, when the API starts, not only in each refusal. (Credentials are
    # the workers' concern: the API never calls a vendor.)
    warn_unconfigured(settings, catalog.providers, log, fields=("base_url",))
    db = Database(settings.database_url, pool_size=settings.api_db_pool_size)
    # /docs and /redoc load Swagger UI and ReDoc from the fastapi-offline
    # wheel's copies, served here: the pages work without internet.
    app = FastAPIOffline(
        title="smsdispatch",
        version="1",
        summary="Submit SMS messages and read their delivery status.",
        lifespan=_closing(db),
        static_url=DOCS_ASSETS,
    )
    caller = _authenticator(settings, db)
    guarded = [Depends(caller)]
    producer = Producer(settings, catalog, db, create_celery(settings))
    owner = key_callbacks_of(db, API_KEY)
    app.include_router(messages_router(settings, producer, db, guarded, owner))
    app.add_middleware(NoStore)
    app.add_exception_handler(RequestValidationError, validation_failed)
    for away in DATABASE_AWAY:
        app.add_exception_handler(away, database_away)
    app.add_exception_handler(RedisError, redis_away)
    app.include_router(metrics_router(settings, db, [routing_collector(settings, catalog)]))
    app.include_router(health_router(settings, db))
    # Final reports are counted for routing after their batch commits; a
    # Redis that hangs delays a batch's answers by at most this timeout.
    counting = Redis.from_url(settings.redis_url, socket_timeout=1, socket_connect_timeout=1)
    app.include_router(reports_router(settings, db, DeliveryBoard(counting, catalog.delivery)))
    app.include_router(campaigns_router(Campaigns(settings, catalog, db), guarded, owner))
    app.include_router(message_search_router(db, db.clock, guarded))
    # A Redis that hangs must not hold the API's threads.
    control_redis = Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2)
    app.include_router(vendors_router(catalog, control_redis, db, guarded, caller))
    app.include_router(routes_router(catalog, control_redis, guarded, caller))
    app.include_router(callbacks_router(db, guarded, owner))
    # After every route: the document covers them all (api/contract.py).
    install_contract(app, catalog_rules(settings, catalog))
    app.add_middleware(
        MaxBodySize,
        max_bytes=settings.api_max_body_bytes,
        uploads=RECIPIENT_UPLOAD,
        max_upload_bytes=settings.api_max_upload_bytes,
    )
    if settings.api_access_log:
        app.add_middleware(AccessLog)  # outermost: it sees every answer, a 413 too
    return app


def _closing(db: Database) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The app's lifespan: the pool's connections close with the server, not
    with the process."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        db.dispose()

    return lifespan


def _authenticator(settings: Settings, db: Database) -> Callable[[str | None], str]:
    """The dependency that refuses a request without a valid key; it names
    the key (for who paused a vendor), never the key itself."""
    keys = [k.get_secret_value().encode() for k in settings.api_keys if k.get_secret_value()]

    def authenticated(key: Annotated[str | None, Depends(API_KEY)]) -> str:
        given = (key or "").encode()
        # Compare with every key, whatever matches, so timing says nothing.
        matched = [hmac.compare_digest(given, k) for k in keys]
        if key and any(matched):
            return "an API_KEYS key"
        if key:
            with db.session() as session:
                name = active_key_name(session, key)
            if name is not None:
                return f"API key {name!r}"
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "a valid X-API-Key is required",
            headers={"WWW-Authenticate": "APIKey"},
        )

    return authenticated


def messages_router(
    settings: Settings,
    producer: Producer,
    db: Database,
    guarded: Sequence[Dependency],
    owner: Callable[..., KeyCallbacks] = lambda: KeyCallbacks(None, None),
) -> APIRouter:
    """Submitting messages, one or a batch, and reading one's status; `owner`
    says which key's callback settings (api/callbacks.py) apply."""
    router = APIRouter(dependencies=list(guarded))
    from_key = Depends(owner)

    @router.post(
        "/v1/messages",
        status_code=status.HTTP_202_ACCEPTED,
        responses={422: {"description": "a field is invalid; `loc` names it"}},
    )
    def submit(message: OneMessageIn, caller: KeyCallbacks = from_key) -> Accepted:
        result = producer.send_batch([to_request(message, caller)])
        if result.rejected:
            bad = result.rejected[0]
            raise _unprocessable(bad.field, "value_error", bad.reason)
        return Accepted(id=result.ids[0])

    @router.post("/v1/messages/batch", status_code=status.HTTP_202_ACCEPTED)
    def submit_batch(batch: BatchIn, caller: KeyCallbacks = from_key) -> BatchOut:
        if len(batch.messages) > settings.api_max_batch:
            raise _unprocessable(
                "messages", "too_long", f"at most {settings.api_max_batch} messages per batch"
            )
        result = producer.send_batch([to_request(m, caller) for m in batch.messages])
        return BatchOut(
            accepted=sorted(result.ids.items()),
            rejected=[
                Rejected(index=r.index, field=r.field, reason=r.reason) for r in result.rejected
            ],
        )

    @router.get(
        "/v1/messages/{message_id:int}", responses={404: {"description": "no such message"}}
    )
    def message_status(message_id: RowId) -> MessageStatusOut:
        with db.session() as session:
            row = message_status_row(session, message_id)
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no message {message_id}")
        return MessageStatusOut.model_validate(row)

    return router


def _unprocessable(field: str, kind: str, reason: str) -> HTTPException:
    """A 422 in FastAPI's own form, naming the body field to fix."""
    detail = [{"loc": ["body", field], "msg": reason, "type": kind}]
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail)


def to_request(message: MessageIn, caller: KeyCallbacks | None = None) -> SendRequest:
    """The producer's request; the message's own callback URL, else its key's default."""
    caller = caller or KeyCallbacks(None, None)
    return SendRequest(
        message.to,
        message.text,
        message.provider,
        message.sender,
        message.client_reference,
        message.idempotency_key,
        message.priority,
        status_callback=message.status_callback or caller.callback_url,
        callback_key_id=caller.signing_key_id,
    )
