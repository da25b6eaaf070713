"""End-to-end throughput: from the producer's call to accepted rows.

Runs the real pipeline (producer -> Redis -> prefork Celery workers -> async
httpx -> vendor endpoints -> results table) and times how long N messages
take from the start of enqueueing until every row is accepted. Scenarios:
single-message endpoints (Cue, Restcomm, Skycore), batch endpoints
(Messangi, SMSBuddy), and single-message endpoints with 200 ms of vendor
latency. Each scenario runs several times; the median is reported.

Vendor base URLs and credentials come from the same settings as production;
by default the simulators are started locally, with their limits lifted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import func, select

from bench.report import write_section
from bench.stack import bench_stack, reset_database
from smsdispatch.local.processes import celery_worker
from smsdispatch.producer.api import Producer
from smsdispatch.producer.validation import SendRequest
from smsdispatch.store.db import Database
from smsdispatch.store.models import messages
from smsdispatch.vocabulary import names
from smsdispatch.workers.app import create_app


@dataclass(frozen=True)
class Scenario:
    name: str
    vendors: tuple[str, ...]
    latency_seconds: float
    messages: int
    # Batch endpoints send one text to many recipients (Messangi's batch
    # shares its text); single-message scenarios give each message its own.
    shared_text: bool = False

    def text(self, i: int) -> str:
        return "Weekend offer: 20% off everything" if self.shared_text else f"benchmark {i}"


def scenarios(scale: float) -> list[Scenario]:
    return [
        Scenario(
            "single-message endpoints", ("cue", "restcomm", "skycore"), 0.0, int(6000 * scale)
        ),
        Scenario("batch endpoints", ("messangi", "smsbuddy"), 0.0, int(20000 * scale), True),
        Scenario(
            "single-message endpoints, 200 ms latency",
            ("cue", "restcomm", "skycore"),
            0.2,
            int(3000 * scale),
        ),
    ]


def accepted(db: Database) -> int:
    with db.session() as session:
        return int(
            session.execute(
                select(func.count()).select_from(messages).where(messages.c.status == "accepted")
            ).scalar_one()
        )


def run_once(scenario: Scenario, producer: Producer, db: Database, sim_root: str) -> float:
    for vendor in scenario.vendors:
        httpx.post(f"{sim_root}/_sim/{vendor}/reset")
        httpx.post(
            f"{sim_root}/_sim/{vendor}/control",
            json={"latency_seconds": scenario.latency_seconds, "ceiling": None},
        )
    requests = [
        SendRequest(
            f"+1202555{i % 10000:04d}",
            scenario.text(i),
            scenario.vendors[i % len(scenario.vendors)],
        )
        for i in range(scenario.messages)
    ]
    started = time.perf_counter()
    for start in range(0, len(requests), 5000):
        producer.send_batch(requests[start : start + 5000])
    while accepted(db) < scenario.messages:
        time.sleep(0.05)
    return scenario.messages / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/smsdispatch_bench"
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply message counts")
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--only", default="", help="run scenarios whose name contains this")
    args = parser.parse_args()

    results: dict[str, Any] = {}
    # Throughput with the vendors' limits lifted: bench/ratelimit.py measures those.
    with bench_stack(args.database_url, lift_limits=True) as stack:
        settings, catalog, sim_root = stack.settings, stack.catalog, stack.sim_root
        queues = [*names.queues(catalog.providers), names.DEFAULT_QUEUE]
        stack.start(celery_worker(stack.env, stack.workdir, queues, concurrency=args.concurrency))
        db = Database(args.database_url)
        producer = Producer(settings, catalog, db, create_app(settings))
        # Warm-up: the workers boot and open their pools.
        reset_database(args.database_url)
        run_once(Scenario("warm-up", ("cue",), 0.0, 200), producer, db, sim_root)
        for scenario in [s for s in scenarios(args.scale) if args.only in s.name]:
            rates = []
            for _ in range(args.runs):
                reset_database(args.database_url)
                rates.append(run_once(scenario, producer, db, sim_root))
            results[scenario.name] = {
                "messages": scenario.messages,
                "runs": [round(r, 1) for r in rates],
                "median_msg_per_s": round(statistics.median(rates), 1),
            }
            print(json.dumps({scenario.name: results[scenario.name]}))
    figures = {
        "database": args.database_url.split("://")[0],
        "worker_processes": args.concurrency,
        "scenarios": results,
    }
    print(json.dumps(figures, indent=2))
    if not args.no_write:
        targets = {
            "single-message endpoints": 1000,
            "batch endpoints": 3000,
            "single-message endpoints, 200 ms latency": 300,
        }
        rows = [
            "| scenario | messages | runs (msg/s) | median msg/s | target |",
            "|---|---|---|---|---|",
        ]
        for name, r in results.items():
            rows.append(
                f"| {name} | {r['messages']} | {', '.join(map(str, r['runs']))} | "
                f"**{r['median_msg_per_s']}** | {targets.get(name, '')} |"
            )
        write_section(
            "pipeline",
            "Send pipeline throughput (enqueue to accepted rows)",
            figures,
            "\n".join(rows),
            NOTES,
        )


NOTES = (
    "Everything runs on the one 2-core machine: the simulators (one uvicorn process), "
    "the worker processes, Redis, PostgreSQL and this script. Throughput is counted from "
    "the first producer call to the moment the last row is `accepted`."
)


if __name__ == "__main__":
    main()
