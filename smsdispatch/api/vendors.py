"""Vendors over HTTP: see their pauses, pause and resume them for every worker.

    GET  /v1/vendors                     every vendor, and its pause if any
    POST /v1/vendors/{vendor}/pause      {"reason", "seconds" (null: until resumed)}
    POST /v1/vendors/{vendor}/resume     lift the pause, whoever set it

An unknown vendor is a 404 naming the known ones. A pause set here names the
API key that set it (`by`), so it reads apart from a worker's automatic one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any

import redis
from fastapi import APIRouter, Depends, HTTPException, Path, status
from fastapi.params import Depends as Dependency

from smsdispatch.api.schemas import PauseIn, PauseOut, ResumedOut, VendorOut
from smsdispatch.config.catalog import Catalog, UnknownProviderError
from smsdispatch.limits.control import pause_vendor, resume_vendor, vendor_pauses
from smsdispatch.limits.pauses import Pause
from smsdispatch.store.db import Database

VendorName = Annotated[str, Path(max_length=32)]


def pause_out(pause: Pause | None) -> PauseOut | None:
    if pause is None:
        return None
    return PauseOut(
        reason=pause.reason,
        by=pause.by,
        automatic=pause.automatic,
        since=pause.since,
        until=pause.until,
    )


def vendor_out(vendor: str, pause: Pause | None) -> VendorOut:
    return VendorOut(vendor=vendor, paused=pause is not None, pause=pause_out(pause))


def vendors_router(
    catalog: Catalog,
    client: redis.Redis,
    db: Database,
    guarded: Sequence[Dependency],
    caller: Callable[..., str],
) -> APIRouter:
    """`caller`: the authentication dependency; it names the key a request used."""
    router = APIRouter(prefix="/v1/vendors", tags=["vendors"], dependencies=list(guarded))
    unknown: dict[int | str, dict[str, Any]] = {404: {"description": "no such vendor"}}

    @router.get("")
    def list_vendors() -> list[VendorOut]:
        return [vendor_out(p, pause) for p, pause in vendor_pauses(client, catalog)]

    @router.post("/{vendor}/pause", responses=unknown)
    # `by` defaults to the dependency itself: a local name in an annotation
    # would not resolve (annotations are strings here).
    def pause(vendor: VendorName, body: PauseIn, by: str = Depends(caller)) -> VendorOut:
        try:
            found = pause_vendor(
                client, catalog, vendor, reason=body.reason, by=by, seconds=body.seconds
            )
        except UnknownProviderError as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
        return vendor_out(vendor, found)

    @router.post("/{vendor}/resume", responses=unknown)
    def resume(vendor: VendorName) -> ResumedOut:
        try:
            resumed = resume_vendor(client, db, catalog, vendor)
        except UnknownProviderError as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
        return ResumedOut(
            vendor=vendor, lifted=pause_out(resumed.lifted), released=resumed.released
        )

    return router
