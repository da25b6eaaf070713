"""`make chaos`: the full fault schedule, one table per vendor, RELIABILITY.md.

    python -m chaos                      # everything, 1000 messages per vendor
    python -m chaos --per-vendor 200 --only sigkill --only redis-flushall
    python -m chaos --list

Each run starts its own workers and beat on the harness's Redis, proxied
PostgreSQL and simulators; the baseline (no faults) runs first. The exit
status is 1 when any run broke the promise (the tables say where), so CI
could run it as a check.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from chaos.faults import (
    DatabaseUnreachable,
    FlushRedis,
    KillWorker,
    RestartRedis,
    SkewedClock,
    VendorErrors,
    VendorHang,
)
from chaos.harness import VENDORS, Harness, Load, RunResult, Scheduled
from chaos.proxy import ProxyState
from chaos.report import figures, schedules, text_tables, write_reliability
from smsdispatch.local.processes import WORKER_CONCURRENCY

DEFAULT_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:5432/smsdispatch_chaos"


@dataclass(frozen=True)
class Plan:
    key: str
    name: str
    schedule: Callable[[], list[Scheduled]]  # fresh fault objects for each run


def plans() -> list[Plan]:
    at_30 = 0.3
    kills = [
        Plan(
            f"sigkill-{n}",
            f"SIGKILL #{n}",
            lambda n=n: [Scheduled(KillWorker(n % 2), at_received=at_30)],  # type: ignore[misc]
        )
        for n in (1, 2, 3, 4, 5)
    ]
    return [
        Plan(
            "postgres-10s",
            "PostgreSQL 10 s",
            lambda: [Scheduled(DatabaseUnreachable(10), at_share=at_30)],
        ),
        Plan(
            "postgres-60s",
            "PostgreSQL 60 s",
            lambda: [Scheduled(DatabaseUnreachable(60), at_share=at_30)],
        ),
        Plan(
            "postgres-hang-10s",
            "PostgreSQL hangs 10 s",
            lambda: [Scheduled(DatabaseUnreachable(10, ProxyState.HANG), at_share=at_30)],
        ),
        Plan(
            "vendors-503-30s",
            "vendors 503 30 s",
            lambda: [Scheduled(VendorErrors(VENDORS, 30), at_share=0.2)],
        ),
        Plan(
            "vendors-hang-10s",
            "vendors hang 10 s",
            lambda: [Scheduled(VendorHang(VENDORS, 10), at_share=0.2)],
        ),
        Plan("redis-flushall", "Redis FLUSHALL", lambda: [Scheduled(FlushRedis(), at_share=at_30)]),
        Plan(
            "redis-restart",
            "Redis restart",
            lambda: [Scheduled(RestartRedis(), at_share=at_30)],
        ),
        *kills,
        Plan("clock-behind", "clock -180 s", lambda: [Scheduled(SkewedClock(-180))]),
        Plan("clock-ahead", "clock +180 s", lambda: [Scheduled(SkewedClock(180))]),
        Plan(
            "mixed",
            "mixed",
            lambda: [
                Scheduled(KillWorker(0), at_share=0.15),
                Scheduled(FlushRedis(), at_share=0.25),
                Scheduled(DatabaseUnreachable(10), at_share=0.35),
                Scheduled(VendorErrors(("smsbuddy", "restcomm"), 10), at_share=0.5),
                Scheduled(RestartRedis(), at_share=0.6),
                Scheduled(VendorHang(("cue", "skycore"), 8), at_share=0.7),
            ],
        ),
    ]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("CHAOS_DATABASE_URL", DEFAULT_DATABASE),
        help="a PostgreSQL database of the harness's own (created if missing, emptied per run)",
    )
    parser.add_argument("--per-vendor", type=int, default=1000)
    parser.add_argument(
        "--submit-seconds", type=float, default=20.0, help="spread the submissions over this long"
    )
    parser.add_argument("--wave-seconds", type=float, default=2.0, help="one batch this often")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=WORKER_CONCURRENCY)
    parser.add_argument("--only", action="append", default=[], help="run only these plan keys")
    parser.add_argument("--list", action="store_true", help="list the plans and exit")
    parser.add_argument("--no-write", action="store_true", help="do not write RELIABILITY.md")
    return parser.parse_args(argv)


def preflight(chosen: list[Plan], workers: int) -> None:
    """Raise now, not half an hour into the schedule, when this machine cannot
    inject one of the chosen faults (Debian's `faketime` missing, say)."""
    for plan in chosen:
        for scheduled in plan.schedule():
            for index in range(workers):
                scheduled.fault.worker_env(index)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    chosen = [p for p in plans() if not args.only or p.key in args.only]
    if args.list or not chosen:
        for plan in plans():
            print(f"{plan.key:<20} {'; '.join(s.describe() for s in plan.schedule())}")
        return 0 if args.list else 2
    load = Load(
        per_vendor=args.per_vendor,
        workers=args.workers,
        concurrency=args.concurrency,
        submit_seconds=args.submit_seconds,
        wave_seconds=args.wave_seconds,
    )
    preflight(chosen, load.workers)
    results: list[RunResult] = []
    # Kept after the run: each run's worker and beat logs and its result.json.
    workdir = Path(".run") / f"chaos-{time.strftime('%Y%m%d-%H%M%S')}"
    workdir.mkdir(parents=True)
    with Harness(args.database_url, workdir=workdir.resolve()) as harness:
        baseline = harness.baseline(load)
        print(baseline.table(), flush=True)
        results.append(baseline)
        for plan in chosen:
            result = harness.run(plan.name, load, plan.schedule(), baseline=baseline)
            print(f"\n{result.table()}", flush=True)
            results.append(result)
        print("\n" + "\n".join(schedules(results)))
        print(f"\n{text_tables(results, load.vendors)}\n")
        print(json.dumps(figures(results), indent=2, default=str))
        if not args.no_write:
            command = " ".join(["python -m chaos", *(shlex.quote(a) for a in sys.argv[1:])])
            path = write_reliability(results, load.vendors, harness, command)
            print(f"\nwritten to {path}")
        print(f"logs and per-run figures: {workdir}")
    return 1 if any(r.violations() for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
