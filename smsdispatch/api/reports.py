"""Delivery-report webhooks: one URL per vendor, authenticated by its token.

    GET|POST /reports/{vendor}/{token}    one report in the vendor's own form
        200 {"result": "applied" | "ignored"}   taken (ignored: late or repeated)
        404  unknown vendor, wrong token, or no message with the report's id yet
             (such a report is kept, and applied when its send is recorded)
        400  not a report in the vendor's form (stored raw as malformed)
        503  the database could not be reached: nothing was recorded, send it again

Every answer but a refused token comes after the report is committed. What
a report goes through (token, parse, the batch it is applied in, a report
that races its send) is reports/intake.py; this is only its HTTP face.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status

from smsdispatch.config.settings import Settings
from smsdispatch.reports.intake import ReportIntake
from smsdispatch.routing.delivery import DeliveryBoard
from smsdispatch.store.db import DATABASE_AWAY, Database
from smsdispatch.store.reports import Applied
from smsdispatch.vocabulary.delivery import IncomingReport, MalformedReport


def reports_router(
    settings: Settings, db: Database, delivery: DeliveryBoard | None = None
) -> APIRouter:
    """`delivery`: where final reports are counted for routing (None: not counted)."""
    router = APIRouter(prefix="/reports", tags=["delivery reports"])
    intake = ReportIntake(settings, db, delivery)

    async def receive(provider: str, token: str, request: Request) -> dict[str, str]:
        """One delivery report, in the form the vendor's document gives."""
        if not intake.authentic(provider, token):
            raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
        incoming = IncomingReport(
            request.method,
            dict(request.query_params),
            await request.body(),
            request.headers.get("content-type", ""),
        )
        try:
            report = await intake.parse(provider, incoming)
        except MalformedReport as exc:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
        try:
            result = await intake.apply(provider, report)
        except DATABASE_AWAY:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, "could not record the report: send it again"
            ) from None
        if result is Applied.MALFORMED:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "a value the database cannot hold")
        if result is Applied.UNMATCHED:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no message with this id")
        return {"result": result.value}

    responses: dict[int | str, dict[str, object]] = {
        400: {"description": "not a report in the vendor's form"},
        404: {"description": "unknown vendor, wrong token, or unknown message"},
    }
    # Cue and SMSBuddy may call with a GET (their documents do not say), the
    # others POST: one handler, one operation id per method.
    for method in ("GET", "POST"):
        router.add_api_route(
            "/{provider}/{token}",
            receive,
            methods=[method],
            responses=responses,
            operation_id=f"delivery_report_{method.lower()}",
        )
    return router
