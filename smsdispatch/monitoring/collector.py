"""The Prometheus view of the whole cluster, read from Redis and the database on scrape.

Every figure here is shared state, not this process's: the workers' counters
in Redis (monitoring/counters.py), the length of every Celery queue in Redis,
and the messages table. So any process can serve /metrics (the HTTP API, or
`smsdispatch metrics --port`) and every replica answers the same.

    smsdispatch_sends_total{provider,outcome}         counter   vendor calls by outcome
    smsdispatch_deferrals_total{provider,reason}      counter   held by us, never sent
    smsdispatch_limiter_wait_seconds{provider}        histogram waits for a limiter slot
    smsdispatch_failovers_total{provider,to}          counter   routed messages moved to `to`
    smsdispatch_stale_messages_total{provider}        counter   expired for want of a final report
    smsdispatch_vendor_no_final_share{vendor}         gauge     of messages created 5-20 min ago
                                                                (catalog [delivery]) and sent, the
                                                                share with no final report yet
    smsdispatch_queue_backlog{queue}                  gauge     Celery messages waiting (LLEN)
    smsdispatch_messages{provider,status}             gauge     messages by status
    smsdispatch_metrics_source_up{source}             gauge     1 if redis / database answered
    smsdispatch_maintenance_runs_total{task,outcome}  counter   sweep/dispatch/reconcile runs
    smsdispatch_maintenance_seconds_since_ok{task}    gauge     (monitoring/maintenance.py)
    smsdispatch_callbacks_total{outcome}              counter   status callbacks: delivered,
                                                                retried, failed
    smsdispatch_callback_latency_seconds              histogram status change to 2xx received
    smsdispatch_callbacks_pending                     gauge     callbacks waiting to be posted

Cost of a scrape: one Redis pipeline (four HGETALLs and an LLEN per queue and
priority step: 4 x 12 small commands) and, at most once per
`db_cache_seconds`, one `SELECT provider, status, count(*) ... GROUP BY`
over `messages`. That query reads the whole table (no index covers
provider and status together): about 0.1-0.3 s per million rows on
PostgreSQL, so it is cached between scrapes and several Prometheus replicas
or a short scrape interval do not multiply it. Delivery rates are derived in
PromQL from `smsdispatch_messages`, e.g.
`smsdispatch_messages{status="delivered"} / ignoring(status)
sum without(status)(smsdispatch_messages{status=~"delivered|undelivered|expired|failed"})`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import redis
from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from smsdispatch.monitoring.counters import (
    CALLBACK_BUCKETS,
    CALLBACK_OUTCOMES,
    read_counts,
    read_wait_histograms,
)
from smsdispatch.monitoring.maintenance import MaintenanceCollector
from smsdispatch.store.callbacks import pending_count
from smsdispatch.store.db import Database
from smsdispatch.store.deadlines import awaiting_reports
from smsdispatch.store.outbox import status_counts
from smsdispatch.vocabulary import keys

log = logging.getLogger(__name__)

# Kombu's Redis transport keeps a queue's messages of priority p > 0 in the
# list "<queue>\x06\x16<p>" (its default priority steps); all of them wait.
KOMBU_PRIORITY_SEP = "\x06\x16"
KOMBU_PRIORITY_STEPS = (0, 3, 6, 9)


def queue_lists(queue: str) -> list[str]:
    return [queue if p == 0 else f"{queue}{KOMBU_PRIORITY_SEP}{p}" for p in KOMBU_PRIORITY_STEPS]


class ClusterCollector:
    """A prometheus_client custom collector (it has `collect()`)."""

    def __init__(
        self,
        client: redis.Redis,
        db: Database,
        queues: Sequence[str],
        *,
        db_cache_seconds: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
        awaiting_after_seconds: float = 300.0,
        awaiting_window_seconds: float = 900.0,
    ) -> None:
        self.client = client
        self.db = db
        self.queues = list(queues)
        self.db_cache_seconds = db_cache_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._cached_at = float("-inf")
        self._cached: DatabaseFigures | None = None
        # The messages whose reports are due: sent this long ago, over this window.
        self.awaiting_after_seconds = awaiting_after_seconds
        self.awaiting_window_seconds = awaiting_window_seconds

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "smsdispatch_metrics_source_up",
            "1 if the source answered this scrape, 0 if its figures are missing.",
            labels=["source"],
        )
        try:
            yield from self._redis_metrics()
            up.add_metric(["redis"], 1)
        except redis.RedisError:
            log.warning("metrics: Redis did not answer", exc_info=True)
            up.add_metric(["redis"], 0)
        figures = self.database_figures()
        if figures is not None:
            yield from figures.metrics()
        up.add_metric(["database"], 0 if figures is None else 1)
        yield up

    def _redis_metrics(self) -> Iterator[Metric]:
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(keys.METRICS_SENDS)
        pipe.hgetall(keys.METRICS_DEFERRALS)
        pipe.hgetall(keys.METRICS_LIMITER_WAITS)
        pipe.hgetall(keys.METRICS_RECOVERIES)
        pipe.hgetall(keys.METRICS_FAILOVERS)
        pipe.hgetall(keys.METRICS_STALE)
        pipe.hgetall(keys.METRICS_CALLBACKS)
        pipe.hgetall(keys.METRICS_CALLBACK_LATENCY)
        for queue in self.queues:
            for name in queue_lists(queue):
                pipe.llen(name)
        (
            sends_raw,
            deferrals_raw,
            waits_raw,
            recoveries_raw,
            failovers_raw,
            stale_raw,
            callbacks_raw,
            callback_latency_raw,
            *lengths,
        ) = pipe.execute()
        yield from _callback_metrics(callbacks_raw, callback_latency_raw)

        sends = CounterMetricFamily(
            "smsdispatch_sends",
            "Calls to vendors by vendor and outcome, as in send_attempts less the "
            "'deferred' ones (those never reached the vendor: see smsdispatch_deferrals).",
            labels=["provider", "outcome"],
        )
        for (provider, outcome), n in sorted(read_counts(sends_raw).items()):
            sends.add_metric([provider, outcome], n)
        yield sends

        deferrals = CounterMetricFamily(
            "smsdispatch_deferrals",
            "Requests our own side held back before calling the vendor, by reason: "
            "'rate_limit' (no limiter slot in time) or 'quiet_hours'. Not sends.",
            labels=["provider", "reason"],
        )
        for (provider, reason), n in sorted(read_counts(deferrals_raw).items()):
            deferrals.add_metric([provider, reason], n)
        yield deferrals

        failovers = CounterMetricFamily(
            "smsdispatch_failovers",
            "Routed messages moved to another vendor of their route after their vendor "
            "certainly did not send them (5xx, throttle, pause, open breaker, refusal of "
            "our sender, or spill-over from a booked limiter), by vendor and new vendor.",
            labels=["provider", "to"],
        )
        for (provider, to), n in sorted(read_counts(failovers_raw).items()):
            failovers.add_metric([provider, to], n)
        yield failovers

        stale = CounterMetricFamily(
            "smsdispatch_stale_messages",
            "Messages expired because their vendor sent no final report within its report "
            "deadline (catalog report_deadline_seconds): error code no_final_report.",
            labels=["provider"],
        )
        for provider, n in sorted(stale_raw.items()):
            stale.add_metric([provider.decode()], int(n))
        yield stale

        waits = HistogramMetricFamily(
            "smsdispatch_limiter_wait_seconds",
            "How long requests waited for a slot from the global rate limiter.",
            labels=["provider"],
        )
        for provider, histogram in sorted(read_wait_histograms(waits_raw).items()):
            waits.add_metric(
                [provider],
                [(le, float(n)) for le, n in histogram.buckets],
                histogram.total,
            )
        yield waits

        recovered = CounterMetricFamily(
            "smsdispatch_recovered_sends",
            "Sends recovered after their worker died or lost the database, by how: "
            "'orphaned' and 'journaled' (the vendor's answer was kept and written), "
            "'ask' (the vendor is asked before any resend), 'resend' (sent again; a "
            "duplicate is possible where the vendor neither deduplicates nor can be "
            "asked), 'give_up' (left unknown after dying on every attempt).",
            labels=["provider", "how"],
        )
        for (provider, how), n in sorted(read_counts(recoveries_raw).items()):
            recovered.add_metric([provider, how], n)
        yield recovered

        backlog = GaugeMetricFamily(
            "smsdispatch_queue_backlog",
            "Celery messages waiting in each queue (Redis LLEN, every priority step).",
            labels=["queue"],
        )
        steps = len(KOMBU_PRIORITY_STEPS)
        for i, queue in enumerate(self.queues):
            backlog.add_metric([queue], sum(int(n) for n in lengths[i * steps : (i + 1) * steps]))
        yield backlog

    def message_counts(self) -> dict[tuple[str, str], int] | None:
        """Messages by (provider, status), re-read at most every db_cache_seconds."""
        figures = self.database_figures()
        return None if figures is None else dict(figures.counts)

    def database_figures(self) -> DatabaseFigures | None:
        """What the database says, re-read at most every db_cache_seconds."""
        with self._lock:
            if self._cached is None or self.clock() - self._cached_at >= self.db_cache_seconds:
                try:
                    with self.db.session() as session:
                        self._cached = DatabaseFigures(
                            status_counts(session),
                            awaiting_reports(
                                session,
                                self.db.clock(),
                                self.awaiting_after_seconds,
                                self.awaiting_window_seconds,
                            ),
                            pending_count(session),
                        )
                    self._cached_at = self.clock()
                except SQLAlchemyError:
                    log.warning("metrics: the database did not answer", exc_info=True)
                    return None
            return self._cached


@dataclass(frozen=True)
class DatabaseFigures:
    counts: dict[tuple[str, str], int]  # (provider, status) -> messages
    awaiting: dict[str, tuple[int, int]]  # provider -> (no final status yet, sent)
    callbacks_pending: int  # status callbacks not yet posted

    def metrics(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily(
            "smsdispatch_messages",
            "Messages in the results table by vendor and status (delivery outcomes).",
            labels=["provider", "status"],
        )
        for (provider, status), n in sorted(self.counts.items()):
            gauge.add_metric([provider, status], n)
        yield gauge
        waiting = GaugeMetricFamily(
            "smsdispatch_vendor_no_final_share",
            "Of the messages a vendor took that were created between the catalog's [delivery] "
            "slow_after_seconds and that plus window_seconds ago (5 to 20 min by default), "
            "the share with no final status yet (no report, no status query answer).",
            labels=["vendor"],
        )
        for provider, (no_final, sent) in sorted(self.awaiting.items()):
            if sent:
                waiting.add_metric([provider], no_final / sent)
        yield waiting
        pending = GaugeMetricFamily(
            "smsdispatch_callbacks_pending",
            "Status callbacks waiting to be posted (due now or retrying later).",
        )
        pending.add_metric([], self.callbacks_pending)
        yield pending


def _callback_metrics(
    outcomes_raw: dict[bytes, bytes], latency_raw: dict[bytes, bytes]
) -> Iterator[Metric]:
    """Status callbacks to client applications (smsdispatch/callbacks/)."""
    outcomes = CounterMetricFamily(
        "smsdispatch_callbacks",
        "Status callback POSTs by outcome: 'delivered' (2xx), 'retried' (no answer, "
        "5xx or 429: tried again later), 'failed' (another 4xx, a refused URL, or "
        "retried for the whole period).",
        labels=["outcome"],
    )
    counted = {k.decode(): int(v) for k, v in outcomes_raw.items()}
    for outcome in CALLBACK_OUTCOMES:
        outcomes.add_metric([outcome], counted.get(outcome, 0))
    yield outcomes
    latency = HistogramMetricFamily(
        "smsdispatch_callback_latency_seconds",
        "Seconds from a message's status change to its callback's 2xx answer.",
    )
    histogram = read_wait_histograms(latency_raw, CALLBACK_BUCKETS).get("all")
    if histogram is not None:
        latency.add_metric([], [(le, float(n)) for le, n in histogram.buckets], histogram.total)
    yield latency


def cluster_registry(
    collector: ClusterCollector, extra: Sequence[Collector] = ()
) -> CollectorRegistry:
    """A registry of our own: nothing process-local (no GC or process metrics of
    whichever process happens to serve the scrape) is mixed in. `extra`: the
    collectors of layers above this one (routing's), handed in by whoever serves."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    registry.register(MaintenanceCollector(collector.client))
    for other in extra:
        registry.register(other)
    return registry
