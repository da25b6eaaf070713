"""Messages whose final report never comes: given up on past their vendor's
deadline, and counted while they wait (reports/deadline.py, store/deadlines.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis
from sqlalchemy import select

from smsdispatch.config.catalog import Catalog
from smsdispatch.config.settings import Settings
from smsdispatch.monitoring.collector import ClusterCollector, cluster_registry
from smsdispatch.reports.deadline import expire_overdue
from smsdispatch.store.deadlines import NO_FINAL_REPORT, awaiting_reports
from smsdispatch.store.models import messages
from smsdispatch.workers.runtime import Runtime
from tests.clock import FakeClock, runtime
from tests.test_outbox import add_rows

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
DAY = 86400.0


def with_deadline(catalog: Catalog, vendor: str, seconds: float) -> Catalog:
    entry = catalog.get(vendor).model_copy(update={"report_deadline_seconds": seconds})
    return catalog.model_copy(update={"providers": {**catalog.providers, vendor: entry}})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def rt(
    settings: Settings,
    database_url: str,
    catalog: Catalog,
    clock: FakeClock,
    redis_client: redis.Redis,
) -> Iterator[Runtime]:
    runtime_ = runtime(settings, database_url, with_deadline(catalog, "skycore", 600), clock)
    yield runtime_
    runtime_.close()


def accepted(rt: Runtime, provider: str, sent_ago: float, status: str = "accepted") -> int:
    sent = NOW - timedelta(seconds=sent_ago)
    [mid] = add_rows(rt.db, 1, provider=provider, status=status, tracking_id="T", sent_at=sent)
    return mid


def state(rt: Runtime, mid: int) -> tuple[str, str | None, datetime | None]:
    m = messages.c
    with rt.db.session() as s:
        row = s.execute(select(m.status, m.error_code, m.final_at).where(m.id == mid)).one()
    return row.status, row.error_code, row.final_at


def test_an_accepted_message_past_its_vendors_report_deadline_is_expired_saying_so(
    rt: Runtime,
) -> None:
    mid = accepted(rt, "cue", 2 * DAY + 1)
    assert expire_overdue(rt, force=True) == {"cue": 1}
    assert state(rt, mid) == ("expired", NO_FINAL_REPORT, NOW)


def test_a_message_within_its_deadline_keeps_waiting_for_its_report(rt: Runtime) -> None:
    mid = accepted(rt, "cue", 2 * DAY - 60)
    assert expire_overdue(rt, force=True) == {}
    assert state(rt, mid)[0] == "accepted"


def test_each_vendor_has_its_own_report_deadline(rt: Runtime) -> None:
    skycore = accepted(rt, "skycore", 601)  # its catalog deadline here: 600 s
    cue = accepted(rt, "cue", 601)
    expire_overdue(rt, force=True)
    assert (state(rt, skycore)[0], state(rt, cue)[0]) == ("expired", "accepted")


def test_the_deadline_waits_for_the_fake_clock_not_todays_date(
    rt: Runtime, clock: FakeClock
) -> None:
    mid = accepted(rt, "skycore", 0)
    expire_overdue(rt, force=True)
    clock.advance(601)
    expire_overdue(rt, force=True)
    assert state(rt, mid) == ("expired", NO_FINAL_REPORT, NOW + timedelta(seconds=601))


def test_a_message_with_a_final_status_is_never_expired(rt: Runtime) -> None:
    mid = accepted(rt, "cue", 3 * DAY, status="delivered")
    expire_overdue(rt, force=True)
    assert state(rt, mid)[0] == "delivered"


def test_the_deadline_runs_once_per_period_whichever_worker_asks(rt: Runtime) -> None:
    accepted(rt, "cue", 3 * DAY)
    assert expire_overdue(rt) == {"cue": 1}
    accepted(rt, "cue", 3 * DAY)
    assert expire_overdue(rt) == {}  # another worker's turn came less than a period ago


def test_expired_messages_are_counted_on_metrics_by_vendor(rt: Runtime) -> None:
    accepted(rt, "cue", 3 * DAY)
    accepted(rt, "cue", 3 * DAY)
    expire_overdue(rt, force=True)
    registry = cluster_registry(ClusterCollector(rt.redis, rt.db, [], db_cache_seconds=0))
    assert registry.get_sample_value("smsdispatch_stale_messages_total", {"provider": "cue"}) == 2


# -- the share still waiting for its report ------------------------------------


def created(rt: Runtime, provider: str, ago: float, now: datetime, **values: object) -> None:
    at = now - timedelta(seconds=ago)
    add_rows(rt.db, 1, provider=provider, at=at, sent_at=at, **values)


def test_the_share_waiting_counts_messages_whose_reports_are_due_only(rt: Runtime) -> None:
    for status in ("accepted", "accepted", "unknown"):
        created(rt, "cue", 600, NOW, status=status)
    created(rt, "cue", 600, NOW, status="delivered", final_at=NOW)
    created(rt, "cue", 60, NOW, status="accepted")  # too young: its report is not due
    created(rt, "cue", 3600, NOW, status="accepted")  # older than the window
    with rt.db.session() as s:
        assert awaiting_reports(s, NOW, 300, 900) == {"cue": (3, 4)}


def test_messages_never_sent_are_not_waiting_for_a_report(rt: Runtime) -> None:
    add_rows(rt.db, 1, at=NOW - timedelta(seconds=600), status="failed")
    with rt.db.session() as s:
        assert awaiting_reports(s, NOW, 300, 900) == {}


def test_metrics_export_each_vendors_share_with_no_final_report(rt: Runtime) -> None:
    now = rt.db.clock()  # the collector reads the database's own clock
    created(rt, "restcomm", 600, now, status="accepted")
    created(rt, "restcomm", 600, now, status="delivered", final_at=now)
    registry = cluster_registry(ClusterCollector(rt.redis, rt.db, [], db_cache_seconds=0))
    share = registry.get_sample_value("smsdispatch_vendor_no_final_share", {"vendor": "restcomm"})
    assert share == pytest.approx(0.5)
