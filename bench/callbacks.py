"""Status callbacks: how many a second one worker posts, and how soon after the change.

A real Celery worker on the `callbacks` queue and beat (the callbacks' sweep)
run against PostgreSQL and a private Redis; a receiver in this process
(uvicorn, on loopback) answers 200 and notes when each POST came. Each run
stores N messages `sending` with a status callback, then one UPDATE moves
them all to `delivered`: the trigger writes N callbacks in that transaction.
Measured: callbacks delivered a second (N over the time from the commit to
the last one received) and, per callback, the time from its status change
(`changed_at`, the database clock, the same host's here) to its arrival
(p50, p99); then the same latency with changes paced at `--paced-rate` a
second (one UPDATE every 50 ms). Several runs, medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from datetime import datetime
from typing import Any

from sqlalchemy import update
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.report import write_section
from bench.stack import bench_stack, reset_database
from smsdispatch.local.processes import celery_beat, celery_worker
from smsdispatch.local.serve import BackgroundServer
from smsdispatch.store.bulk import insert_many
from smsdispatch.store.db import Database
from smsdispatch.store.models import messages
from smsdispatch.vocabulary import names
from smsdispatch.vocabulary.signatures import verify_signature

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/smsdispatch_bench"
SECRET = "bench-callback-secret-0123456789abcdef"  # noqa: S105 (a throwaway bench stack)


class Receiver:
    """Notes (arrival time, message id, change time) of every signed POST."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.arrivals: list[tuple[float, dict[str, Any]]] = []
        self.bad = 0

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            body = await request.body()
            at = time.time()
            ok = verify_signature(body, request.headers.get("Smsdispatch-Signature", ""), SECRET)
            with self.lock:
                if ok:
                    self.arrivals.append((at, json.loads(body)))
                else:
                    self.bad += 1
            return Response("ok")

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])

    def count(self) -> int:
        with self.lock:
            return len(self.arrivals)

    def take(self) -> list[tuple[float, dict[str, Any]]]:
        with self.lock:
            taken, self.arrivals = self.arrivals, []
            return taken


def seed(db: Database, count: int, url: str) -> None:
    now = db.clock()
    shared = {
        "provider": "cue",
        "sender": "CUESMS",
        "text": "bench",
        "encoding": "gsm7",
        "segments": 1,
        "status": "sending",
        "attempts": 1,
        "priority": 0,
        "status_callback": url,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }
    with db.session() as session, session.begin():
        insert_many(
            session,
            messages,
            shared,
            ["recipient"],
            [(f"+1212{3_000_000 + i:07d}",) for i in range(count)],
        )


def change_paced(db: Database, count: int, rate: float) -> None:
    """Move `count` messages to `delivered` at `rate` a second, in ticks of 50 ms."""
    per_tick = max(1, round(rate * 0.05))
    started = time.monotonic()
    for tick, first in enumerate(range(1, count + 1, per_tick)):
        ids = list(range(first, min(first + per_tick, count + 1)))
        with db.session() as session, session.begin():
            session.execute(
                update(messages)
                .where(messages.c.id.in_(ids))
                .values(status="delivered", updated_at=db.clock(), final_at=db.clock())
            )
        pause = started + (tick + 1) * 0.05 - time.monotonic()
        if pause > 0:
            time.sleep(pause)


def paced_run(
    db: Database, receiver: Receiver, url: str, rate: float, seconds: float, timeout: float
) -> dict[str, Any]:
    """Changes at a steady rate below the worker's: the latency of one change,
    not of a queue behind a burst."""
    count = round(rate * seconds)
    reset_database(db.engine.url.render_as_string(hide_password=False))
    receiver.take()
    seed(db, count, url)
    change_paced(db, count, rate)
    deadline = time.monotonic() + timeout
    while receiver.count() < count and time.monotonic() < deadline:
        time.sleep(0.05)
    arrivals = receiver.take()
    latencies = sorted(at - _epoch(doc["changed_at"]) for at, doc in arrivals)
    return {
        "rate_per_s": rate,
        "callbacks": len(arrivals),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p99_ms": round(latencies[int(0.99 * (len(latencies) - 1))] * 1000, 1),
    }


def change_all(db: Database) -> float:
    """Every message `delivered` in one transaction; when it committed (time.time())."""
    with db.session() as session, session.begin():
        session.execute(
            update(messages).values(status="delivered", updated_at=db.clock(), final_at=db.clock())
        )
    return time.time()


def one_run(
    db: Database, receiver: Receiver, url: str, count: int, timeout: float
) -> dict[str, Any]:
    reset_database(db.engine.url.render_as_string(hide_password=False))
    receiver.take()
    seed(db, count, url)
    committed = change_all(db)
    deadline = time.monotonic() + timeout
    while receiver.count() < count and time.monotonic() < deadline:
        time.sleep(0.05)
    arrivals = receiver.take()
    if len(arrivals) < count:
        raise SystemExit(f"only {len(arrivals)} of {count} callbacks arrived in {timeout:.0f}s")
    last = max(at for at, _ in arrivals)
    latencies = sorted(at - _epoch(doc["changed_at"]) for at, doc in arrivals)
    return {
        "callbacks": count,
        "delivered_per_s": round(count / (last - committed), 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p99_ms": round(latencies[int(0.99 * (len(latencies) - 1))] * 1000, 1),
        "duplicates": len(arrivals) - len({doc["sequence"] for _, doc in arrivals}),
    }


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--callbacks", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--database-url", default=PG_URL, help="a PostgreSQL database it may empty")
    parser.add_argument("--paced-rate", type=float, default=100.0)
    parser.add_argument("--paced-seconds", type=float, default=5.0)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    receiver = Receiver()
    server = BackgroundServer(receiver.app())
    server.start()
    url = f"{server.root}/hook"
    runs: list[dict[str, Any]] = []
    paced: list[dict[str, Any]] = []
    try:
        with bench_stack(args.database_url) as stack:
            env = {
                **stack.env,
                "CALLBACK_SECRET": SECRET,
                "CALLBACK_ALLOW_PRIVATE": "true",
                "CALLBACK_HOST_RATE_PER_SECOND": "100000",
                "CALLBACK_HOST_CONCURRENCY": "64",
                "CALLBACK_INTERVAL_SECONDS": "0.25",
            }
            stack.start(celery_worker(env, stack.workdir, [names.CALLBACKS_QUEUE], name="cb"))
            stack.start(celery_beat(env, stack.workdir))
            db = Database(args.database_url)
            one_run(db, receiver, url, 50, args.timeout)  # warm: worker, pools, beat
            for _ in range(args.runs):
                runs.append(one_run(db, receiver, url, args.callbacks, args.timeout))
                paced.append(
                    paced_run(db, receiver, url, args.paced_rate, args.paced_seconds, args.timeout)
                )
                print(json.dumps({"burst": runs[-1], "paced": paced[-1]}), flush=True)
            db.dispose()
    finally:
        server.stop()
    figures: dict[str, Any] = {
        "callbacks_per_run": args.callbacks,
        "worker_processes": 1,
        "runs": runs,
        "median_delivered_per_s": statistics.median(r["delivered_per_s"] for r in runs),
        "median_p50_ms": statistics.median(r["p50_ms"] for r in runs),
        "median_p99_ms": statistics.median(r["p99_ms"] for r in runs),
        "paced": {
            "runs": paced,
            "median_p50_ms": statistics.median(p["p50_ms"] for p in paced),
            "median_p99_ms": statistics.median(p["p99_ms"] for p in paced),
        },
        "bad_signatures": receiver.bad,
    }
    print(json.dumps(figures, indent=2))
    if not args.no_write:
        write_section("callbacks", "Status callbacks", figures, table(figures), NOTES)


def table(figures: dict[str, Any]) -> str:
    paced = figures["paced"]["runs"]
    per_run = ", ".join(str(r["delivered_per_s"]) for r in figures["runs"])
    return "\n".join(
        [
            "| status callbacks (PostgreSQL, 1 worker process, 1 receiver) | runs | median |",
            "|---|---|---|",
            f"| delivered per second | {per_run} | {figures['median_delivered_per_s']} |",
            "| status change to callback received, p50 (ms) | "
            f"{', '.join(str(r['p50_ms']) for r in figures['runs'])} | "
            f"{figures['median_p50_ms']} |",
            "| status change to callback received, p99 (ms) | "
            f"{', '.join(str(r['p99_ms']) for r in figures['runs'])} | "
            f"{figures['median_p99_ms']} |",
            f"| paced at {paced[0]['rate_per_s']:g}/s: status change to callback, p50 (ms) | "
            f"{', '.join(str(p['p50_ms']) for p in paced)} | "
            f"{figures['paced']['median_p50_ms']} |",
            f"| paced at {paced[0]['rate_per_s']:g}/s: status change to callback, p99 (ms) | "
            f"{', '.join(str(p['p99_ms']) for p in paced)} | "
            f"{figures['paced']['median_p99_ms']} |",
        ]
    )


NOTES = (
    "Burst: all N callbacks come from one transaction, so they are due at once and the "
    "latency includes waiting behind the others of the burst. Paced: status changes "
    "spread evenly below the worker's rate, the latency of one change; its floor is "
    "beat's sweep interval (CALLBACK_INTERVAL_SECONDS, 0.25 s here; 0.5 s by default) "
    "and the wait behind an earlier change of the same message. The receiver "
    "verifies every signature. One receiving host: the per-host concurrency "
    "(CALLBACK_HOST_CONCURRENCY, 64 here) bounds the rate as much as the worker does."
)


if __name__ == "__main__":
    main()
