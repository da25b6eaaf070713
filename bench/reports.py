"""Delivery-report webhooks: how many reports a second one API process applies.

Messages are stored `accepted` with Restcomm tracking ids; then Restcomm's
StatusCallback form is posted for each, from this process with N concurrent
connections, to `smsdispatch api` running as a process of its own (uvicorn,
one process), on PostgreSQL. Measured: first reports (each moves its message
to its final status), the same reports again (each changes nothing: late or
repeated reports), the same requests with a wrong token (refused at once: the
process's rate without report work) and their ratio, run by run; and, posted
open loop at `--paced-rate`, each report's time to its answer (p50, p99).
Several runs, medians.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

import aiohttp
from pydantic import SecretStr

from bench.report import write_section
from bench.stack import bench_stack, reset_database
from smsdispatch.local.processes import api_process, free_port, wait_http
from smsdispatch.reports.urls import report_url
from smsdispatch.store.bulk import insert_many
from smsdispatch.store.db import Database
from smsdispatch.store.models import messages

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/smsdispatch_bench"
SECRET = "bench-report-secret-0123456789abcdef"  # noqa: S105 (a throwaway bench stack)


def seed(db: Database, count: int) -> list[str]:
    """`count` accepted Restcomm messages; their tracking ids."""
    now = db.clock()
    sids = [f"SM{i:032d}" for i in range(count)]
    shared = {
        "provider": "restcomm",
        "sender": "55555",
        "text": "bench",
        "encoding": "gsm7",
        "segments": 1,
        "status": "accepted",
        "attempts": 1,
        "priority": 0,
        "next_attempt_at": now,
        "created_at": now,
        "sent_at": now,
        "updated_at": now,
    }
    with db.session() as session, session.begin():
        insert_many(
            session,
            messages,
            shared,
            ["recipient", "tracking_id"],
            [(f"+1212{2_000_000 + i:07d}", sid) for i, sid in enumerate(sids)],
        )
    return sids


def restcomm_form(sid: str) -> dict[str, str]:
    return {"MessageSid": sid, "MessageStatus": "delivered", "ErrorCode": "0"}


# The poster is aiohttp's client: httpx's (httpcore's pool) costs several
# times more CPU per request (bench.transport), and the poster shares the
# API's two cores, so with httpx the figures measured the poster.
def poster(connections: int) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections),
        timeout=aiohttp.ClientTimeout(total=30),
    )


async def post_all(url: str, sids: list[str], concurrency: int) -> tuple[float, dict[int, int]]:
    """Closed loop: `concurrency` connections post one report after another."""
    codes: dict[int, int] = {}
    queue: asyncio.Queue[str] = asyncio.Queue()
    for sid in sids:
        queue.put_nowait(sid)
    async with poster(concurrency) as client:

        async def worker() -> None:
            while not queue.empty():
                form = restcomm_form(queue.get_nowait())
                async with client.post(url, data=form) as response:
                    await response.read()
                codes[response.status] = codes.get(response.status, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started, codes


async def post_paced(url: str, sids: list[str], rate: float) -> dict[str, float]:
    """Open loop: one report every 1/rate s whatever the answers; each one's
    time from being posted to its answer, which comes after the transaction
    that changed its message's status committed."""
    latencies: list[float] = []
    failed = 0
    async with poster(1000) as client:

        async def one(sid: str, at: float) -> None:
            nonlocal failed
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            posted = time.perf_counter()
            async with client.post(url, data=restcomm_form(sid)) as response:
                await response.read()
            latencies.append(time.perf_counter() - posted)
            failed += response.status != 200

        started = time.perf_counter()
        await asyncio.gather(*(one(sid, started + i / rate) for i, sid in enumerate(sids)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "offered_per_s": rate,
        "answered_per_s": round(len(sids) / elapsed, 1),
        "p50_ms": round(1000 * latencies[len(latencies) // 2], 1),
        "p99_ms": round(1000 * latencies[int(len(latencies) * 0.99) - 1], 1),
        "not_200": failed,
    }


def median_of(values: list[float]) -> dict[str, Any]:
    return {"runs": [round(v, 2) for v in values], "median": round(statistics.median(values), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reports", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=3)
    # Closed loop: with N connections a server that answers after its batch
    # commits takes at most N reports per batch, so 20 measured the batch's
    # latency (20 reports per ~13 ms), not what the process can apply. 100 is
    # the pool of aiohttp's and httpx's clients, what a vendor posting
    # thousands a second with either would open.
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--paced-rate", type=float, default=1000.0)
    parser.add_argument("--paced-seconds", type=float, default=5.0)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    first: list[float] = []
    again: list[float] = []
    refused: list[float] = []
    paced: list[dict[str, float]] = []
    codes: dict[str, dict[int, int]] = {}
    with bench_stack(PG_URL) as stack:
        port = free_port()
        env = {**stack.env, "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}", "REPORT_SECRET": SECRET}
        stack.start(api_process(env, stack.workdir, port))
        wait_http(f"http://127.0.0.1:{port}/openapi.json")
        settings = stack.settings.model_copy(
            update={"public_base_url": env["PUBLIC_BASE_URL"], "report_secret": SecretStr(SECRET)}
        )
        url = report_url(settings, "restcomm")
        assert url is not None
        wrong_token = url[:-6] + "abcdef"
        db = Database(PG_URL)
        for _ in range(args.runs):
            reset_database(PG_URL)
            sids = seed(db, args.reports)
            seconds, codes["first"] = asyncio.run(post_all(url, sids, args.concurrency))
            first.append(args.reports / seconds)
            seconds, codes["again"] = asyncio.run(post_all(url, sids, args.concurrency))
            again.append(args.reports / seconds)
            seconds, codes["refused"] = asyncio.run(post_all(wrong_token, sids, args.concurrency))
            refused.append(args.reports / seconds)
            reset_database(PG_URL)
            sids = seed(db, round(args.paced_rate * args.paced_seconds))
            paced.append(asyncio.run(post_paced(url, sids, args.paced_rate)))
            print(
                json.dumps(
                    {
                        "first_per_s": round(first[-1]),
                        "again_per_s": round(again[-1]),
                        "refused_per_s": round(refused[-1]),
                        "paced": paced[-1],
                    }
                ),
                flush=True,
            )
        db.dispose()
    figures: dict[str, Any] = {
        "reports_per_run": args.reports,
        "concurrency": args.concurrency,
        "api_processes": 1,
        "first_reports_per_s": median_of(first),
        "repeated_reports_per_s": median_of(again),
        "refused_reports_per_s": median_of(refused),
        "first_to_refused_ratio": median_of([f / r for f, r in zip(first, refused, strict=True)]),
        "paced": {
            "runs": paced,
            "median_p99_ms": statistics.median(p["p99_ms"] for p in paced),
            "median_p50_ms": statistics.median(p["p50_ms"] for p in paced),
            "median_answered_per_s": statistics.median(p["answered_per_s"] for p in paced),
        },
        "status_codes_last_run": codes,
    }
    print(json.dumps(figures, indent=2))
    if not args.no_write:
        write_section("reports", "Delivery-report webhooks", figures, table(figures), NOTES)


def table(figures: dict[str, Any]) -> str:
    rows = [
        "| reports (PostgreSQL, 1 API process) | runs | median |",
        "|---|---|---|",
    ]
    for label, key in (
        ("first: each settles its message (reports/s)", "first_reports_per_s"),
        ("repeated: each changes nothing (reports/s)", "repeated_reports_per_s"),
        ("refused at once: a wrong token (requests/s)", "refused_reports_per_s"),
        ("first / refused, run by run", "first_to_refused_ratio"),
    ):
        runs = ", ".join(map(str, figures[key]["runs"]))
        rows.append(f"| {label} | {runs} | **{figures[key]['median']}** |")
    paced = figures["paced"]
    offered = paced["runs"][0]["offered_per_s"]
    runs = ", ".join(f"{p['p99_ms']}" for p in paced["runs"])
    rows.append(
        f"| p99 ms from posting to the answer (after the commit), {offered:.0f} reports/s "
        f"offered | {runs} | **{paced['median_p99_ms']}** |"
    )
    return "\n".join(rows)


NOTES = (
    "Restcomm's StatusCallback form, posted over loopback with 100 connections to one "
    "`smsdispatch api` process; the poster runs on the same 2 cores. The process applies "
    "the reports it takes in batches (reports/batcher.py): one transaction holds many "
    "requests' forward-only UPDATEs and one INSERT of their raw copies, and each request "
    "is answered after that commit. A refused report (a wrong token) touches no database: "
    "its rate is what the same process serves without any report work. The paced run "
    "posts at a fixed rate whatever the answers (open loop) and times each answer. More "
    "API processes (uvicorn workers, or replicas behind a load balancer) scale it out."
)


if __name__ == "__main__":
    main()
