"""Delivery-report webhooks: how many reports a second one API process applies.

Messages are stored `accepted` with Restcomm tracking ids; then Restcomm's
StatusCallback form is posted for each, from this process with N concurrent
connections, to `smsdispatch api` running as a process of its own (uvicorn,
one process), on PostgreSQL. Measured: first reports (each moves its message
to its final status: one UPDATE and one INSERT), and the same reports again
(each changes nothing: late or repeated reports). Several runs, medians.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

import httpx
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


async def post_all(url: str, sids: list[str], concurrency: int) -> tuple[float, dict[int, int]]:
    codes: dict[int, int] = {}
    queue: asyncio.Queue[str] = asyncio.Queue()
    for sid in sids:
        queue.put_nowait(sid)
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def worker() -> None:
            while not queue.empty():
                sid = queue.get_nowait()
                form = {"MessageSid": sid, "MessageStatus": "delivered", "ErrorCode": "0"}
                response = await client.post(url, data=form)
                codes[response.status_code] = codes.get(response.status_code, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started, codes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reports", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    first: list[float] = []
    again: list[float] = []
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
        db = Database(PG_URL)
        for _ in range(args.runs):
            reset_database(PG_URL)
            sids = seed(db, args.reports)
            seconds, codes["first"] = asyncio.run(post_all(url, sids, args.concurrency))
            first.append(args.reports / seconds)
            seconds, codes["again"] = asyncio.run(post_all(url, sids, args.concurrency))
            again.append(args.reports / seconds)
            print(json.dumps({"first_per_s": round(first[-1]), "again_per_s": round(again[-1])}))
        db.dispose()
    figures: dict[str, Any] = {
        "reports_per_run": args.reports,
        "concurrency": args.concurrency,
        "api_processes": 1,
        "first_reports_per_s": {
            "runs": [round(r) for r in first],
            "median": round(statistics.median(first)),
        },
        "repeated_reports_per_s": {
            "runs": [round(r) for r in again],
            "median": round(statistics.median(again)),
        },
        "status_codes_last_run": codes,
    }
    print(json.dumps(figures, indent=2))
    if not args.no_write:
        rows = [
            "| reports (PostgreSQL, 1 API process) | runs (reports/s) | median |",
            "|---|---|---|",
        ]
        for label, key in (
            ("first: each settles its message", "first_reports_per_s"),
            ("repeated: each changes nothing", "repeated_reports_per_s"),
        ):
            runs = ", ".join(map(str, figures[key]["runs"]))
            rows.append(f"| {label} | {runs} | **{figures[key]['median']}** |")
        table = "\n".join(rows)
        write_section("reports", "Delivery-report webhooks", figures, table, NOTES)


NOTES = (
    "Restcomm's StatusCallback form, posted over loopback with 20 connections to one "
    "`smsdispatch api` process; the poster runs on the same 2 cores. Each report is one "
    "forward-only UPDATE and one INSERT of the raw report, in its own transaction. More "
    "API processes (uvicorn workers, or replicas behind a load balancer) scale it out."
)


if __name__ == "__main__":
    main()
