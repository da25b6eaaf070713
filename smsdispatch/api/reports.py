"""Delivery-report webhooks: one URL per vendor, authenticated by its token.

    GET|POST /reports/{vendor}/{token}    one report in the vendor's own form
        200 {"result": "applied" | "ignored"}   taken (ignored: late or repeated)
        404  unknown vendor, wrong token, or no message with the report's id
        400  not a report in the vendor's form (stored raw as malformed)

The token (reports/urls.py) is compared in constant time and never
logged. Each report is one forward-only UPDATE and one INSERT, applied in the
request: no Celery task, so a burst of reports costs a burst of small
transactions. Vendor specifics (form, vocabulary) are each adapter's
`parse_report`; the forward-only rule is smsdispatch.store.reports.

A report that names a message the worker has not recorded yet (the report
raced the send's commit: no row carries its id, or the row is still
`sending`) is matched again for up to `report_match_wait_seconds`; then an
unmatched one is a 404, and a final one for a row still `sending` settles it
(the worker's own update, which requires `sending`, then changes nothing).
Skycore retries a postback not answered 200; for the others reconciliation,
where it exists, and the `unknown` deadline settle what was refused.
"""

from __future__ import annotations

import asyncio
import logging
import time

from fastapi import APIRouter, HTTPException, Request, status
from starlette.concurrency import run_in_threadpool

from smsdispatch.config.settings import Settings
from smsdispatch.providers.registry import ADAPTERS
from smsdispatch.reports.urls import token_valid
from smsdispatch.store.db import Database
from smsdispatch.store.reports import Applied, apply_report, record
from smsdispatch.vocabulary.delivery import DeliveryReport, IncomingReport, MalformedReport

log = logging.getLogger(__name__)

MATCH_RETRY_SECONDS = 0.25


def reports_router(settings: Settings, db: Database) -> APIRouter:
    router = APIRouter(prefix="/reports", tags=["delivery reports"])

    def apply(provider: str, report: DeliveryReport, last_try: bool) -> Applied:
        with db.session() as session, session.begin():
            return apply_report(session, provider, report, db.clock(), last_try=last_try)

    def keep_malformed(provider: str, raw: str) -> None:
        with db.session() as session, session.begin():
            record(session, provider, None, db.clock(), Applied.MALFORMED, raw=raw)

    async def receive(provider: str, token: str, request: Request) -> dict[str, str]:
        """One delivery report, in the form the vendor's document gives."""
        if provider not in ADAPTERS or not token_valid(settings, provider, token):
            # Neither the token nor the path is logged: the path holds the token.
            log.warning("refused a delivery report: unknown vendor or wrong token")
            raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
        incoming = IncomingReport(
            request.method,
            dict(request.query_params),
            await request.body(),
            request.headers.get("content-type", ""),
        )
        try:
            report = ADAPTERS[provider].parse_report(incoming)
        except MalformedReport as exc:
            await run_in_threadpool(keep_malformed, provider, incoming.raw)
            log.warning("%s: malformed delivery report: %s", provider, exc)
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
        deadline = time.monotonic() + settings.report_match_wait_seconds
        while True:
            last = time.monotonic() + MATCH_RETRY_SECONDS >= deadline
            result = await run_in_threadpool(apply, provider, report, last)
            if result not in (Applied.UNMATCHED, Applied.PENDING) or last:
                break
            await asyncio.sleep(MATCH_RETRY_SECONDS)
        if result is Applied.UNMATCHED:
            log.warning("%s: a delivery report matched no message", provider)
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
