"""Campaigns over HTTP: create, upload recipients (CSV), preview, schedule, control, read.

    POST /v1/campaigns                       create a draft            -> 201
    POST /v1/campaigns/{id}/recipients       CSV body (text/csv)       -> import report
    GET  /v1/campaigns/{id}/preview          samples and segment total
    POST /v1/campaigns/{id}/schedule         start_at, end_at          -> the campaign
    POST /v1/campaigns/{id}/start|pause|resume|cancel (one operation each) -> the campaign
    GET  /v1/campaigns, /v1/campaigns/{id}   status and messages by status

The CSV is the request body itself (no multipart form): it is streamed to a
temporary file, so memory stays flat, then imported as `smsdispatch campaign
import` does; every rejected row comes back with its line (the first 100).
The request lasts as long as the import (about a minute per million rows).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.params import Depends
from starlette.concurrency import run_in_threadpool

from smsdispatch.api.schemas import (
    CampaignIn,
    CampaignOut,
    ImportOut,
    PreviewOut,
    PreviewSample,
    RowId,
    RowRejection,
    ScheduleIn,
    VendorShareOut,
)
from smsdispatch.campaigns.recipients import RecipientListError
from smsdispatch.campaigns.service import (
    CampaignError,
    CampaignNotFound,
    Campaigns,
    CampaignSpec,
    shown_provider,
)
from smsdispatch.store.api_keys import KeyCallbacks
from smsdispatch.vocabulary.errors import ConflictError

T = TypeVar("T")
UNPROCESSABLE = status.HTTP_422_UNPROCESSABLE_CONTENT
# Spooled in memory up to this size, then on disk.
SPOOL_BYTES = 1_000_000


def campaigns_router(
    service: Campaigns,
    guarded: Sequence[Depends],
    owner: Callable[..., KeyCallbacks] = lambda: KeyCallbacks(None, None),
) -> APIRouter:
    """`owner`: the caller's key's callback settings (api/callbacks.py)."""
    router = APIRouter(prefix="/v1/campaigns", tags=["campaigns"], dependencies=list(guarded))
    from_key: Any = Depends(owner)
    errors: dict[int | str, dict[str, Any]] = {
        404: {"description": "no such campaign"},
        409: {"description": "the campaign's status does not allow this"},
        422: {"description": "a field is invalid; `loc` names it"},
    }

    def out(campaign_id: int) -> CampaignOut:
        row = service.get(campaign_id)
        return CampaignOut.model_validate(
            {
                **row,
                "provider": shown_provider(row["provider"]),
                "counts": service.live_counts(campaign_id),
                "by_vendor": service.live_vendor_counts(campaign_id),
            }
        )

    @router.post("", status_code=status.HTTP_201_CREATED, responses=errors)
    def create(body: CampaignIn, caller: KeyCallbacks = from_key) -> CampaignOut:
        fields = body.model_dump()
        fields["status_callback"] = body.status_callback or caller.callback_url
        spec = CampaignSpec(**fields, callback_key_id=caller.signing_key_id)
        campaign_id = guard(lambda: service.create(spec))
        return out(campaign_id)

    @router.get("")
    def list_campaigns() -> list[CampaignOut]:
        return [
            CampaignOut.model_validate(
                {**row, "provider": shown_provider(row["provider"]), "counts": row["counts"] or {}}
            )
            for row in service.list()
        ]

    @router.get("/{campaign_id:int}", responses=errors)
    def read(campaign_id: RowId) -> CampaignOut:
        return guard(lambda: out(campaign_id))

    @router.post(
        "/{campaign_id:int}/recipients",
        responses=errors,
        openapi_extra={
            "requestBody": {
                "required": True,
                "description": "CSV: a header row that names the `phone_column` column "
                "and every {placeholder} of the template, then one row per recipient",
                "content": {"text/csv": {"schema": {"type": "string", "minLength": 1}}},
            }
        },
    )
    async def upload(
        campaign_id: RowId,
        request: Request,
        phone_column: str = Query("phone", max_length=64),
    ) -> ImportOut:
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
            async for chunk in request.stream():
                spool.write(chunk)
            spool.seek(0)
            result = await run_in_threadpool(
                guard,
                lambda: service.import_csv(campaign_id, spool, phone_column=phone_column),  # type: ignore[arg-type]
            )
        return ImportOut(
            imported=result.imported,
            rejected=result.rejected,
            duplicates=result.duplicates,
            opted_out=result.opted_out,
            rejections=[
                RowRejection(line=b.line, reason=b.reason) for b in result.first_rejections
            ],
        )

    @router.get("/{campaign_id:int}/preview", responses=errors)
    def preview(campaign_id: RowId, samples: int = Query(5, ge=1, le=50)) -> PreviewOut:
        result = guard(lambda: service.preview(campaign_id, samples))
        return PreviewOut(
            messages=result.messages,
            segments=result.segments,
            by_encoding=result.by_encoding,
            max_segments=result.max_segments,
            samples=[
                PreviewSample(
                    recipient=s.recipient, text=s.text, encoding=s.encoding, segments=s.segments
                )
                for s in result.samples
            ],
            routed=result.routed,
            vendors=[
                VendorShareOut(
                    vendor=v.vendor,
                    messages=v.messages,
                    segments=v.segments,
                    cost=v.cost,
                    unpriced_segments=v.unpriced_segments,
                )
                for v in result.vendors
            ],
            unroutable=result.unroutable,
        )

    @router.post("/{campaign_id:int}/schedule", responses=errors)
    def schedule(campaign_id: RowId, body: ScheduleIn) -> CampaignOut:
        guard(lambda: service.schedule(campaign_id, body.start_at, body.end_at, body.timezone))
        return out(campaign_id)

    add_control_routes(router, service, out, errors)
    return router


def add_control_routes(
    router: APIRouter,
    service: Campaigns,
    out: Callable[[int], CampaignOut],
    errors: dict[int | str, dict[str, Any]],
) -> None:
    """POST /{id}/start, pause, resume, cancel: one operation per action, so
    each path answers 405 to another method (not a 422 about `action`)."""

    def controller(action: str) -> Callable[[int], CampaignOut]:
        def control(campaign_id: RowId) -> CampaignOut:
            guard(lambda: getattr(service, action)(campaign_id))
            return out(campaign_id)

        return control

    for action in ("start", "pause", "resume", "cancel"):
        router.add_api_route(
            f"/{{campaign_id:int}}/{action}",
            controller(action),
            methods=["POST"],
            responses=errors,
            name=action,
            operation_id=f"{action}_campaign",
            summary=f"{action.capitalize()} the campaign",
        )


def guard(call: Callable[[], T]) -> T:
    """Campaign errors as HTTP answers that say what to fix, told apart by type.

    Any `ConflictError` (a status that refuses the action or the import) is a
    409: the request is fine and may succeed later. Not found and bad input are
    caught by their campaign classes, not by kind: an `UnknownProviderError` for
    a campaign whose vendor left the catalog is not a 404 for the campaign, and
    a stored template that no longer parses is not the caller's 422.
    """
    try:
        return call()
    except CampaignNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except ConflictError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except CampaignError as exc:
        detail = [{"loc": ["body", exc.field], "msg": exc.reason, "type": "value_error"}]
        raise HTTPException(UNPROCESSABLE, detail) from None
    except RecipientListError as exc:
        detail = [{"loc": ["body"], "msg": str(exc), "type": "value_error"}]
        raise HTTPException(UNPROCESSABLE, detail) from None
