"""Taking in one delivery report: authenticate, parse, record, apply.

Everything the webhook (api/reports.py) does apart from HTTP, so that the
rules live with the rest of the delivery-report path. The token
(reports/urls.py) is compared in constant time and never logged. Each
report is one forward-only UPDATE and one INSERT (store/reports.py): no
Celery task, so a burst of reports costs a burst of small transactions.
Vendor specifics (form, vocabulary) are each adapter's `parse_report`.

A report that names a message the worker has not recorded yet (the report
raced the send's commit: no row carries its id, or the row is still
`sending`) is matched again for up to `report_match_wait_seconds`; then an
unmatched one is refused, and a final one for a row still `sending` settles
it (the worker's own update, which requires `sending`, then changes
nothing). Skycore retries a postback not answered 200; for the others
reconciliation, where it exists, and the `unknown` deadline settle what was
refused.
"""

from __future__ import annotations

import asyncio
import logging
import time

from starlette.concurrency import run_in_threadpool

from smsdispatch.config.settings import Settings
from smsdispatch.providers.registry import ADAPTERS
from smsdispatch.reports.urls import token_valid
from smsdispatch.store.db import Database
from smsdispatch.store.reports import Applied, apply_report, record
from smsdispatch.vocabulary.delivery import DeliveryReport, IncomingReport, MalformedReport

log = logging.getLogger(__name__)

MATCH_RETRY_SECONDS = 0.25


class ReportIntake:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings, self.db = settings, db

    def authentic(self, provider: str, token: str) -> bool:
        """A known vendor and its token. Neither is logged: the path holds the token."""
        if provider in ADAPTERS and token_valid(self.settings, provider, token):
            return True
        log.warning("refused a delivery report: unknown vendor or wrong token")
        return False

    async def parse(self, provider: str, incoming: IncomingReport) -> DeliveryReport:
        """The vendor's report, normalized; a malformed one is kept raw, then
        MalformedReport is raised."""
        try:
            return ADAPTERS[provider].parse_report(incoming)
        except MalformedReport as exc:
            await run_in_threadpool(self._keep_malformed, provider, incoming.raw)
            log.warning("%s: malformed delivery report: %s", provider, exc)
            raise

    async def apply(self, provider: str, report: DeliveryReport) -> Applied:
        """Apply the report, matching it again while it may be racing its send."""
        deadline = time.monotonic() + self.settings.report_match_wait_seconds
        while True:
            last = time.monotonic() + MATCH_RETRY_SECONDS >= deadline
            result = await run_in_threadpool(self._apply_once, provider, report, last)
            if result not in (Applied.UNMATCHED, Applied.PENDING) or last:
                break
            await asyncio.sleep(MATCH_RETRY_SECONDS)
        if result is Applied.UNMATCHED:
            log.warning("%s: a delivery report matched no message", provider)
        return result

    def _apply_once(self, provider: str, report: DeliveryReport, last_try: bool) -> Applied:
        with self.db.session() as session, session.begin():
            return apply_report(session, provider, report, self.db.clock(), last_try=last_try)

    def _keep_malformed(self, provider: str, raw: str) -> None:
        with self.db.session() as session, session.begin():
            record(session, provider, None, self.db.clock(), Applied.MALFORMED, raw=raw)
