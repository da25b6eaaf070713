"""Taking in delivery reports: authenticate, parse, then apply in batches.

Everything the webhook (api/reports.py) does apart from HTTP, so that the
rules live with the rest of the delivery-report path. The token
(reports/urls.py) is compared in constant time and never logged. Vendor
specifics (form, vocabulary) are each adapter's `parse_report`.

Reports are applied by this process's batcher (reports/batcher.py): many
requests' reports in one transaction, forward only (store/reports.py), each
request answered after its batch commits. A report that names a message
whose send is not recorded yet (it raced the worker's commit) does not wait:
it is kept `unmatched` and applied by the transaction that records the send.

After each commit, the messages the batch moved to a final status are
counted in the vendors' delivery figures (routing/delivery.py), best effort:
a Redis error costs a count, never a report.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from starlette.concurrency import run_in_threadpool

from smsdispatch.config.settings import Settings
from smsdispatch.providers.registry import ADAPTERS
from smsdispatch.reports.batcher import Batcher
from smsdispatch.reports.urls import report_token, token_valid
from smsdispatch.routing.delivery import DeliveryBoard
from smsdispatch.store.db import DATABASE_AWAY, Database, retrying
from smsdispatch.store.outbox import REFUSED
from smsdispatch.store.reports import Applied, Final, apply_kept, apply_reports, record
from smsdispatch.vocabulary.delivery import DeliveryReport, IncomingReport, MalformedReport

log = logging.getLogger(__name__)

# Batches of several API processes, and the workers' own writes, can lock the
# same rows in different orders; the database then refuses one transaction
# as a deadlock. It is tried again for this long before its requests fail
# (503: the vendor sends the report again, or reconciliation asks for it).
BATCH_RETRY_SECONDS = 2.0

Taken = tuple[str, DeliveryReport]


class ReportIntake:
    def __init__(
        self, settings: Settings, db: Database, delivery: DeliveryBoard | None = None
    ) -> None:
        """`delivery`: where final reports are counted (None: not counted)."""
        self.settings, self.db, self.delivery = settings, db, delivery
        # Derived once: an HMAC per request cost the webhook 4% of its time.
        self._tokens = {provider: report_token(settings, provider) for provider in ADAPTERS}
        self.batcher: Batcher[Taken, Applied] = Batcher(
            self._write,
            max_size=settings.report_batch_size,
            max_wait=settings.report_batch_wait_seconds,
        )

    def authentic(self, provider: str, token: str) -> bool:
        """A known vendor and its token. Neither is logged: the path holds the token."""
        if provider in ADAPTERS and token_valid(self._tokens.get(provider), token):
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
        """Apply the report with the others of its batch; back once committed."""
        result = await self.batcher.submit((provider, report))
        if result is Applied.UNMATCHED:
            log.info("%s: a delivery report matched no message yet; kept", provider)
        return result

    def _write(self, batch: Sequence[Taken]) -> Sequence[Applied | Exception]:
        """One transaction; report by report if the database refuses a value
        (one report it will not take costs the others nothing)."""
        try:
            return self._write_retrying(batch)
        except REFUSED:
            log.exception("the database refused a batch of reports; applying them one by one")
            return [self._write_alone(item) for item in batch]

    def _write_alone(self, item: Taken) -> Applied | Exception:
        """One report in its own transaction; its failure is its own."""
        try:
            return self._write_retrying([item])[0]
        except REFUSED:
            provider, report = item
            self._keep_malformed(provider, report.raw)
            return Applied.MALFORMED
        except Exception as exc:  # this report's request fails (503); the others stand
            return exc

    def _write_retrying(self, batch: Sequence[Taken]) -> list[Applied]:
        return retrying(
            lambda: self._write_once(batch), BATCH_RETRY_SECONDS, what="applying reports"
        )

    def _write_once(self, batch: Sequence[Taken]) -> list[Applied]:
        now = self.db.clock()
        finals: list[Final] = []
        with self.db.session() as session, session.begin():
            outcomes = apply_reports(session, batch, now, finals=finals)
        self._count(finals)  # committed: a retry of the transaction cannot count them twice
        return self._look_again(batch, outcomes)

    def _count(self, finals: list[Final]) -> None:
        if self.delivery is not None and finals:
            self.delivery.record(finals)

    def _look_again(self, batch: Sequence[Taken], outcomes: list[Applied]) -> list[Applied]:
        """Kept reports, once more after our commit: a send recorded while our
        transaction ran could not see them, nor we it (store/reports.py
        `apply_kept`). Best effort: reconciliation re-applies what is left."""
        kept = {
            report.tracking_id
            for (_, report), outcome in zip(batch, outcomes, strict=True)
            if outcome is Applied.UNMATCHED and report.tracking_id
        }
        if not kept:
            return outcomes
        finals: list[Final] = []
        try:
            with self.db.session() as session, session.begin():
                moved = apply_kept(session, kept, self.db.clock(), finals=finals)
        except DATABASE_AWAY:
            return outcomes
        self._count(finals)
        return [
            Applied.APPLIED
            if outcome is Applied.UNMATCHED and report.tracking_id in moved
            else outcome
            for (_, report), outcome in zip(batch, outcomes, strict=True)
        ]

    def _keep_malformed(self, provider: str, raw: str) -> None:
        with self.db.session() as session, session.begin():
            record(session, provider, None, self.db.clock(), Applied.MALFORMED, raw=raw)
