"""Status callbacks over HTTP: which failed, and sending them again.

    GET  /v1/callbacks?state=failed&after_id=0&limit=100   callbacks in id order (no secrets)
    POST /v1/callbacks/{id}/replay                         a failed one, pending again now
    POST /v1/callbacks/replay                              every failed one (up to `limit`)

A key made by `smsdispatch keys create` sees and replays its own messages'
callbacks; an API_KEYS key, everyone's. (A key made before migration 0015
has no secret of its own: its messages' callbacks are signed with
CALLBACK_SECRET and listed to API_KEYS keys only.) A replayed callback is retried for
a whole period again (CALLBACK_RETRY_PERIOD_SECONDS) from the replay.

`key_callbacks` is also the dependency the message and campaign routes use
to learn the caller's default callback URL and signing key.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.params import Depends as Dependency
from pydantic import BaseModel, Field

from smsdispatch.api.schemas import RowId
from smsdispatch.store import callbacks as store
from smsdispatch.store.api_keys import KeyCallbacks
from smsdispatch.store.api_keys import key_callbacks as stored_key_callbacks
from smsdispatch.store.db import Database


class CallbackOut(BaseModel):
    """One status callback: where it goes and how it fared (never its secret)."""

    id: int = Field(description="also its sequence number among its message's callbacks")
    message_id: int
    event: str = Field(description="'status' (a status change) or 'vendor' (moved by failover)")
    status: str
    provider: str
    url: str
    state: Literal["pending", "delivered", "failed"]
    attempts: int
    changed_at: datetime
    next_attempt_at: datetime
    settled_at: datetime | None
    response_status: int | None = Field(description="the receiver's last HTTP status")
    last_error: str | None


class ReplayedOut(BaseModel):
    replayed: list[int]


def key_callbacks_of(db: Database, header: Callable[..., Any]) -> Callable[..., KeyCallbacks]:
    """The dependency: the caller's key's callback settings (an API_KEYS key
    has none of its own: CALLBACK_SECRET signs, no default URL)."""

    presented = Depends(header)

    def callbacks_of_key(key: str | None = presented) -> KeyCallbacks:
        if not key:
            return KeyCallbacks(None, None)
        with db.session() as session:
            found = stored_key_callbacks(session, key)
        return found or KeyCallbacks(None, None)

    return callbacks_of_key


def callbacks_router(
    db: Database, guarded: Sequence[Dependency], owner: Callable[..., KeyCallbacks]
) -> APIRouter:
    router = APIRouter(
        prefix="/v1/callbacks",
        tags=["callbacks"],
        dependencies=list(guarded),
        responses={401: {"description": "no valid X-API-Key"}},
    )
    from_key = Depends(owner)
    missing: dict[int | str, dict[str, Any]] = {
        404: {"description": "no failed callback with this id (of this key's messages)"}
    }

    @router.get("")
    def list_callbacks(
        state: Literal["pending", "delivered", "failed"] | None = None,
        after_id: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        caller: KeyCallbacks = from_key,
    ) -> list[CallbackOut]:
        with db.session() as session:
            rows = store.list_callbacks(
                session, state, limit=limit, after_id=after_id, key_id=caller.key_id
            )
        return [CallbackOut.model_validate(row, from_attributes=True) for row in rows]

    @router.post("/replay")
    def replay_all(
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
        caller: KeyCallbacks = from_key,
    ) -> ReplayedOut:
        with db.session() as session, session.begin():
            ids = store.replay(session, None, db.clock(), limit, key_id=caller.key_id)
        return ReplayedOut(replayed=ids)

    @router.post("/{callback_id}/replay", responses=missing)
    def replay_one(callback_id: RowId, caller: KeyCallbacks = from_key) -> ReplayedOut:
        with db.session() as session, session.begin():
            ids = store.replay(session, [callback_id], db.clock(), key_id=caller.key_id)
        if not ids:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, f"no failed callback {callback_id} to replay"
            )
        return ReplayedOut(replayed=ids)

    return router
