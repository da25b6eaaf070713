"""Routing with failover: a vendor of a three-vendor route fails for a minute, then recovers.

A steady stream of routed messages (`--rate` a second, handed over in small
batches as an application would) runs over a route of Cue, Restcomm and
Skycore, each at `--vendor-rate` messages a second. After `--before`
seconds one vendor (`--failing`) answers 503 to everything for
`--fail-seconds`, then recovers; the stream goes on until every weight of
the route is back at rest (or `--recover-timeout`). One worker of the shape
`make worker` starts and beat (rebalancing every second) serve it.

Figures per run:
- seconds until 95% of traffic has moved: from the failure's start to the
  first second from which every later 5-second slice of the failure sent at
  most 5% of its messages first to the failing vendor (where each message
  was first sent: its first attempt's vendor);
- messages delayed more than 10 s (accepted more than 10 s after they were
  handed over) among those handed over from the failure on, and before it
  (the baseline, normally 0);
- messages failed (target 0) and messages at two vendors, counted in the
  simulators' records (target 0);
- seconds from the recovery until every weight of the route is back;
- throughput with spill-over against one vendor alone, in the same run: a
  batch of `--spill-seconds` (20) of one vendor's rate, first named to one vendor, then
  routed over a route of the same three vendors weighted 80/10/10, so that
  only spill-over spreads it beyond the first vendor's 2 s (as the batch is
  routed, and at send time what the limiter still defers). Seconds from
  handing the batch over until every message is accepted.

The catalog's breaker and weight settings are shortened (see `POLICY`) so
that a run takes about three minutes; the shipped ones (a 30 s breaker
window and cooldown, weights back after 15 quiet minutes) play out the same
way, slower. Medians of `--runs` runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import redis
from sqlalchemy import select

from bench.report import write_section
from bench.stack import BenchStack, bench_stack
from smsdispatch.local.processes import (
    WORKER_CONCURRENCY,
    WORKER_POOL,
    celery_beat,
    celery_worker,
)
from smsdispatch.producer.api import Producer
from smsdispatch.producer.validation import SendRequest
from smsdispatch.routing.weights import WeightBoard
from smsdispatch.store.db import Database
from smsdispatch.store.models import messages, send_attempts
from smsdispatch.vocabulary import names
from smsdispatch.workers.app import create_app

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/smsdispatch_bench"
VENDORS = ("cue", "restcomm", "skycore")
SENDERS = {"cue": "CUESMS", "restcomm": "55555", "skycore": "00000"}  # no long codes (1/s)
STREAM_PREFIX = "+1202555"  # the default route
SPILL_PREFIX = "+1303555"  # the spill route
TICK_SECONDS = 0.2
SLICE_SECONDS = 5.0
MOVED_SHARE = 0.95
DELAYED_SECONDS = 10.0

# Breaker and weights, shortened so that a run takes minutes (module docstring).
POLICY: dict[str, Any] = {
    "breaker": {
        "window_seconds": 10,
        "min_volume": 20,
        "failure_ratio": 0.5,
        "cooldown_seconds": 10,
        "probe_interval_seconds": 1,
        "probes_to_close": 3,
        "bucket_seconds": 1,
        "keep_seconds": 120,
    },
    "weights": {"step": 10, "cooldown_seconds": 2, "recover_after_seconds": 5},
}
REBALANCE_SECONDS = 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--rate", type=float, default=30.0, help="routed messages a second")
    parser.add_argument("--vendor-rate", type=int, default=50, help="each vendor's ceiling")
    parser.add_argument("--failing", default="cue", choices=VENDORS)
    parser.add_argument("--before", type=float, default=10.0, help="seconds before the failure")
    parser.add_argument("--fail-seconds", type=float, default=60.0)
    parser.add_argument("--recover-timeout", type=float, default=90.0)
    parser.add_argument(
        "--spill-seconds",
        type=int,
        default=20,
        help="the spill-over batch: this many seconds of one vendor's rate (the batch's "
        "fixed costs, a few seconds, weigh less in a longer one)",
    )
    parser.add_argument("--database-url", default=PG_URL)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    runs = []
    for _ in range(args.runs):
        figures = run(args)
        print(json.dumps(figures), flush=True)
        runs.append(figures)
    summary = summarize(runs)
    print(json.dumps(summary, indent=2))
    if not args.no_write:
        figures = {"summary": summary, "policy": POLICY, "runs": runs}
        write_section("routing", TITLE, figures, table(summary, args), NOTES)


def catalog(vendor_rate: int) -> dict[str, Any]:
    limit = {"count": vendor_rate, "per_seconds": 1, "burst": max(1, vendor_rate // 10)}
    share = 100 // len(VENDORS)
    spill = {VENDORS[0]: 80, VENDORS[1]: 10, VENDORS[2]: 10}
    return {
        "providers": {v: {"account_limit": limit} for v in VENDORS},
        "routes": {
            "default": {
                "vendors": [{"vendor": v, "sender": SENDERS[v], "weight": share} for v in VENDORS]
            },
            "spill": {
                "destinations": ["+1303"],
                "vendors": [
                    {"vendor": v, "sender": SENDERS[v], "weight": spill[v]} for v in VENDORS
                ],
            },
        },
        **POLICY,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    with bench_stack(args.database_url, catalog=catalog(args.vendor_rate)) as stack:
        stack.env["REBALANCE_INTERVAL_SECONDS"] = str(REBALANCE_SECONDS)
        queues = [*names.queues(stack.catalog.providers), names.DEFAULT_QUEUE]
        queues.append(names.MAINTENANCE_QUEUE)
        stack.start(
            celery_worker(
                stack.env, stack.workdir, queues, concurrency=WORKER_CONCURRENCY, pool=WORKER_POOL
            )
        )
        stack.start(celery_beat(stack.env, stack.workdir))
        db = Database(args.database_url)
        client = redis.Redis.from_url(stack.broker_url)
        try:
            producer = Producer(stack.settings, stack.catalog, db, create_app(stack.settings))
            failover = failure_and_recovery(stack, producer, db, client, args)
            spill = spill_over(stack, producer, db, args.vendor_rate, args.spill_seconds)
        finally:
            client.close()
            db.dispose()
    return {**failover, **spill}


# -- the failure and the recovery ------------------------------------------------


@dataclass
class Stream:
    """Routed messages at a steady rate; when each was handed over (monotonic)."""

    producer: Producer
    rate: float
    sent_at: dict[int, float] = field(default_factory=dict)
    _owed: float = 0.0

    def run_until(self, done: Callable[[], bool], timeout: float) -> float | None:
        """Send until `done()`; the seconds it took, or None after `timeout`."""
        started = time.monotonic()
        while not done():
            tick = time.monotonic()
            if tick - started > timeout:
                return None
            self._owed += self.rate * TICK_SECONDS
            count, self._owed = int(self._owed), self._owed % 1
            first = len(self.sent_at)
            requests = [
                SendRequest(f"{STREAM_PREFIX}{i % 10_000:04d}", f"routing {i}")
                for i in range(first, first + count)
            ]
            result = self.producer.send_batch(requests)
            assert not result.rejected, result.rejected
            self.sent_at.update((result.ids[i], tick) for i in range(count))
            time.sleep(max(0.0, TICK_SECONDS - (time.monotonic() - tick)))
        return time.monotonic() - started


def failure_and_recovery(
    stack: BenchStack,
    producer: Producer,
    db: Database,
    client: redis.Redis,
    args: argparse.Namespace,
) -> dict[str, Any]:
    route = stack.catalog.routes["default"]
    board = WeightBoard(client, stack.catalog.weights, stack.catalog.breaker)
    resting = {v.vendor: v.weight for v in route.vendors}
    stream = Stream(producer, args.rate)

    began = time.monotonic()
    stream.run_until(lambda: time.monotonic() - began >= args.before, args.before + 1)
    control(stack, args.failing, {"fail_with": "http:503", "error_rate": 1.0})
    failed_at = time.monotonic()
    stream.run_until(lambda: time.monotonic() - failed_at >= args.fail_seconds, args.fail_seconds)
    control(stack, args.failing, {"error_rate": 0.0})
    recovered_at = time.monotonic()
    lowest = dict(resting)

    def weights_back() -> bool:
        now = board.current(route)
        for vendor, weight in now.items():
            lowest[vendor] = min(lowest[vendor], weight)
        return now == resting

    back = stream.run_until(weights_back, args.recover_timeout)
    ids = list(stream.sent_at)
    wait_settled(db, ids, timeout=120)

    rows = message_rows(db, ids)
    first = first_vendors(db, ids)
    failing = [
        (at - failed_at, first.get(i) == args.failing)
        for i, at in stream.sent_at.items()
        if 0 <= at - failed_at < recovered_at - failed_at
    ]
    delays = {i: delay_seconds(rows[i]) for i in ids}
    before = [i for i, at in stream.sent_at.items() if at < failed_at]
    since = [i for i, at in stream.sent_at.items() if at >= failed_at]
    statuses = Counter(r["status"] for r in rows.values())
    two_vendors, more_than_once = received_twice(stack, rows.values())
    return {
        "messages": len(ids),
        "seconds_until_95pct_moved": seconds_until_moved(failing, recovered_at - failed_at),
        "share_moved_after_that": share_moved(failing, recovered_at - failed_at),
        "delayed_over_10s": sum((delays[i] or 0) > DELAYED_SECONDS for i in since),
        "delayed_over_10s_before_the_failure": sum(
            (delays[i] or 0) > DELAYED_SECONDS for i in before
        ),
        "failed": statuses.get("failed", 0),
        "unknown": statuses.get("unknown", 0),
        "at_two_vendors": two_vendors,
        "received_more_than_once": more_than_once,
        "first_sent_to_the_failing_vendor_during_the_failure": sum(f for _, f in failing),
        "seconds_until_weights_back": round(back, 1) if back is not None else None,
        "lowest_weight": lowest,
    }


def seconds_until_moved(failing: Sequence[tuple[float, bool]], length: float) -> float | None:
    """The first second after which every 5-second slice of the failure sent
    at most 5% of its messages first to the failing vendor; None if none did."""
    slices = [
        share_off(failing, s, s + SLICE_SECONDS) for s in range(int(length - SLICE_SECONDS) + 1)
    ]
    for start in range(len(slices)):
        if all(share >= MOVED_SHARE for share in slices[start:]):
            return float(start)
    return None


def share_moved(failing: Sequence[tuple[float, bool]], length: float) -> float | None:
    """The share of the failure's messages from `seconds_until_moved` on sent elsewhere first."""
    moved_at = seconds_until_moved(failing, length)
    if moved_at is None:
        return None
    return round(share_off(failing, moved_at, length), 4)


def share_off(failing: Sequence[tuple[float, bool]], start: float, end: float) -> float:
    inside = [to_failing for at, to_failing in failing if start <= at < end]
    return 1.0 - sum(inside) / len(inside) if inside else 1.0


# -- spill-over ------------------------------------------------------------------


def spill_over(
    stack: BenchStack, producer: Producer, db: Database, vendor_rate: int, seconds: int
) -> dict[str, Any]:
    """One vendor alone, then the spill route, with the same number of messages."""
    count = seconds * vendor_rate
    alone_vendor = VENDORS[0]
    alone = [
        SendRequest(f"{SPILL_PREFIX}{i:04d}", f"alone {i}", alone_vendor, SENDERS[alone_vendor])
        for i in range(count)
    ]
    routed = [SendRequest(f"{SPILL_PREFIX}{i:04d}", f"spill {i}") for i in range(count)]
    one = timed_batch(producer, db, alone)
    spread = timed_batch(producer, db, routed)
    return {
        "spill_messages": count,
        "one_vendor_msg_per_s": round(count / one, 1),
        "spill_over_msg_per_s": round(count / spread, 1),
        "spill_over_over_one_vendor": round(one / spread, 2),
    }


def timed_batch(producer: Producer, db: Database, requests: list[SendRequest]) -> float:
    started = time.monotonic()
    result = producer.send_batch(requests)
    assert not result.rejected, result.rejected
    wait_settled(db, list(result.ids.values()), timeout=300)
    return time.monotonic() - started


# -- reading back ----------------------------------------------------------------


def control(stack: BenchStack, vendor: str, update: dict[str, Any]) -> None:
    httpx.post(f"{stack.sim_root}/_sim/{vendor}/control", json=update).raise_for_status()


def message_rows(db: Database, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    m = messages.c
    out: dict[int, dict[str, Any]] = {}
    with db.session() as session:
        for chunk in range(0, len(ids), 5000):
            query = select(
                m.id, m.status, m.provider, m.recipient, m.text, m.created_at, m.sent_at
            ).where(m.id.in_(ids[chunk : chunk + 5000]))
            out.update((r.id, r._asdict()) for r in session.execute(query))
    return out


def first_vendors(db: Database, ids: Sequence[int]) -> dict[int, str]:
    """Where each message was first sent: its first attempt's vendor."""
    a = send_attempts.c
    out: dict[int, str] = {}
    with db.session() as session:
        for chunk in range(0, len(ids), 5000):
            query = (
                select(a.message_id, a.provider)
                .where(a.message_id.in_(ids[chunk : chunk + 5000]))
                .order_by(a.message_id, a.id)
            )
            for r in session.execute(query):
                out.setdefault(r.message_id, r.provider)
    return out


def wait_settled(db: Database, ids: Sequence[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = message_rows(db, ids)
        if len(rows) == len(ids) and all(r["status"] not in UNSENT for r in rows.values()):
            return
        time.sleep(0.2)
    print(f"note: not every message settled within {timeout:.0f}s", flush=True)


UNSENT = ("queued", "sending")


def delay_seconds(row: dict[str, Any]) -> float | None:
    sent: datetime | None = row["sent_at"]
    return None if sent is None else (sent - row["created_at"]).total_seconds()


def received_twice(stack: BenchStack, rows: Iterable[dict[str, Any]]) -> tuple[int, int]:
    """Of these messages, how many the simulators received at two vendors or
    more, and how many more than once at all (at one vendor or several)."""
    seen: dict[tuple[str, str], list[str]] = defaultdict(list)
    for vendor in VENDORS:
        url = f"{stack.sim_root}/_sim/{vendor}/received"
        for r in httpx.get(url, timeout=60).json()["received"]:
            seen[(r["to"].lstrip("+"), r["text"])].append(vendor)
    receipts = [seen.get((r["recipient"].lstrip("+"), r["text"]), []) for r in rows]
    return sum(len(set(v)) > 1 for v in receipts), sum(len(v) > 1 for v in receipts)


# -- the summary -----------------------------------------------------------------


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def median(key: str) -> float | None:
        values = [r[key] for r in runs if r[key] is not None]
        return round(float(statistics.median(values)), 2) if values else None

    return {
        "runs": len(runs),
        "seconds_until_95pct_moved": median("seconds_until_95pct_moved"),
        "delayed_over_10s": median("delayed_over_10s"),
        "failed": max(r["failed"] for r in runs),
        "at_two_vendors": max(r["at_two_vendors"] for r in runs),
        "received_more_than_once": max(r["received_more_than_once"] for r in runs),
        "unknown": max(r["unknown"] for r in runs),
        "seconds_until_weights_back": median("seconds_until_weights_back"),
        "weights_not_back_in_runs": sum(r["seconds_until_weights_back"] is None for r in runs),
        "one_vendor_msg_per_s": median("one_vendor_msg_per_s"),
        "spill_over_msg_per_s": median("spill_over_msg_per_s"),
        "spill_over_over_one_vendor": median("spill_over_over_one_vendor"),
    }


def table(summary: dict[str, Any], args: argparse.Namespace) -> str:
    s = summary
    rows = [
        "| figure | value | target |",
        "|---|---|---|",
        f"| seconds until 95% of traffic moved off {args.failing} (median) "
        f"| **{s['seconds_until_95pct_moved']}** | within 30 |",
        f"| messages delayed > 10 s by the failure (median) | **{s['delayed_over_10s']}** | |",
        f"| messages failed (worst run) | **{s['failed']}** | 0 |",
        f"| messages at two vendors (worst run) | **{s['at_two_vendors']}** | 0 |",
        f"| messages received more than once anywhere (worst run) "
        f"| {s['received_more_than_once']} | 0 |",
        f"| messages left unknown (worst run) | {s['unknown']} | |",
        f"| seconds from recovery until the weights are back (median) "
        f"| **{s['seconds_until_weights_back']}** | |",
        f"| one vendor alone, msg/s (median) | {s['one_vendor_msg_per_s']} | |",
        f"| three vendors with spill-over, msg/s (median) | {s['spill_over_msg_per_s']} | |",
        f"| spill-over / one vendor (median) | **{s['spill_over_over_one_vendor']}** | about 3 |",
    ]
    return "\n".join(rows) + (
        f"\n\nStream: {args.rate:g} routed msg/s over {', '.join(VENDORS)} at "
        f"{args.vendor_rate} msg/s each; {args.failing} answers 503 for {args.fail_seconds:g} s "
        f"after {args.before:g} s; {s['runs']} run(s)."
    )


TITLE = "Routing: one vendor of three fails for a minute, then recovers"
NOTES = (
    "Targets from the routing issue: 95% of the traffic moved within 30 s, no message failed "
    "and none at two vendors; weights back once the vendor is healthy; a batch routed over "
    "several vendors runs at about their summed rate. Where a message went is its first "
    "attempt's vendor (send_attempts.provider). The breaker and weight settings are the "
    "bench's (`POLICY` in bench/routing.py, in the raw figures), shortened so a run takes "
    "minutes; beat rebalances every second. One worker (`-P threads -c 8`) and beat; the "
    "simulators, Redis and PostgreSQL share the machine."
)


if __name__ == "__main__":
    main()
