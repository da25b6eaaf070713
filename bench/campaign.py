"""Campaigns at scale: importing a million recipients, and what dispatching holds in Redis.

Import: a generated CSV of N recipients (1% of rows bad: invalid numbers,
duplicates, empty template values) is imported into a campaign the way
`smsdispatch campaign import` does it, in a child process that reports its
own wall time and peak memory (and its pool workers'). On SQLite and on
PostgreSQL, several runs each; medians reported. Target: under 60 s each,
under 300 MB.

Dispatch: campaigns of different sizes are started against the simulators
with real workers and beat, each for a fixed time, while Redis is sampled:
its memory and the message ids it holds (queued and reserved). With the
dispatcher these must not grow with the campaign; for contrast, the same
ids published at once (what enqueuing a campaign without a dispatcher does)
are measured in the same Redis.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import func, select

from bench.report import write_section
from bench.stack import bench_stack, ensure_database, reset_database
from smsdispatch.campaigns.service import Campaigns, CampaignSpec
from smsdispatch.config.catalog import load_catalog
from smsdispatch.config.settings import Settings
from smsdispatch.local.processes import celery_beat, celery_worker
from smsdispatch.queueing.backlog import RedisProbe
from smsdispatch.queueing.publish import publish
from smsdispatch.store.db import Database
from smsdispatch.store.migrate import upgrade
from smsdispatch.store.models import messages
from smsdispatch.vocabulary import names
from smsdispatch.workers.app import create_app

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/smsdispatch_bench"
TEMPLATE = "Hi {first_name}, your code is {code}. Reply STOP to opt out."
VENDOR = "messangi"


def write_csv(path: Path, rows: int) -> dict[str, int]:
    """N recipient rows; every 200th invalid, every 300th a duplicate, every 500th
    missing its name. Returns how many of each, to check the import against."""
    bad = {"invalid": 0, "duplicate": 0, "empty": 0}
    with path.open("w", encoding="utf-8") as out:
        out.write("phone,first_name,code\n")
        for i in range(rows):
            if i % 200 == 199:
                phone, bad["invalid"] = f"+1212{i:04d}", bad["invalid"] + 1
            elif i % 300 == 299:
                phone, bad["duplicate"] = f"+1212{2_000_000 + i - 1:07d}", bad["duplicate"] + 1
            else:
                phone = f"+1212{2_000_000 + i:07d}"
            name = "" if i % 500 == 499 and i % 200 != 199 and i % 300 != 299 else f"Name{i % 977}"
            if not name:
                bad["empty"] += 1
            out.write(f"{phone},{name},{i % 99991:05d}\n")
    return bad


def new_campaign(database_url: str, catalog_path: Path | None = None) -> int:
    settings = Settings(_env_file=None, database_url=database_url)
    if catalog_path is not None:
        settings = settings.model_copy(update={"catalog_path": catalog_path})
    service = Campaigns(settings, load_catalog(settings.catalog_path), Database(database_url))
    return service.create(CampaignSpec(name="bench", provider=VENDOR, template=TEMPLATE))


def child_import(database_url: str, campaign_id: int, csv_path: str) -> None:
    """Runs in a fresh process: import, then print time and peak memory as JSON."""
    settings = Settings(_env_file=None, database_url=database_url)
    service = Campaigns(settings, load_catalog(settings.catalog_path), Database(database_url))
    started = time.perf_counter()
    with open(csv_path, "rb") as stream:
        result = service.import_csv(campaign_id, stream)
    seconds = time.perf_counter() - started
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(
        json.dumps(
            {
                "seconds": seconds,
                "imported": result.imported,
                "rejected": result.rejected,
                "duplicates": result.duplicates,
                "peak_mb": own,
            }
        )
    )


def import_once(database_url: str, csv_path: Path) -> dict[str, Any]:
    upgrade(database_url)
    reset_database(database_url)
    campaign_id = new_campaign(database_url)
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.campaign", "--child-import", database_url,
         str(campaign_id), str(csv_path)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    peak_pss = 0
    while child.poll() is None:
        peak_pss = max(peak_pss, tree_pss_kb(child.pid))
        time.sleep(0.2)
    assert child.stdout is not None
    out = child.stdout.read()
    if child.returncode:
        raise RuntimeError(f"import failed ({child.returncode})")
    figures: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    figures["all_processes_peak_mb"] = peak_pss // 1024
    return figures


def tree_pss_kb(pid: int) -> int:
    """Proportional memory of a process and its descendants (the import's pool and
    its fork server): shared pages are counted once, split between their users."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, frontier = {pid}, [pid]
    while frontier:
        current = frontier.pop()
        children = [p for p, parent in parents.items() if parent == current]
        tree.update(children)
        frontier += children
    total = 0
    for member in tree:
        try:
            rollup = Path(f"/proc/{member}/smaps_rollup").read_text()
        except OSError:
            continue
        total += next(
            int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:")
        )
    return total


def bench_import(rows: int, runs: int, workdir: Path) -> dict[str, Any]:
    csv_path = workdir / "recipients.csv"
    bad = write_csv(csv_path, rows)
    results: dict[str, Any] = {"rows": rows, "bad_rows_written": bad}
    for backend, url in (("sqlite", f"sqlite:///{workdir / 'import.db'}"), ("postgresql", PG_URL)):
        ensure_database(url)
        runs_ = []
        for _ in range(runs):
            if backend == "sqlite":
                (workdir / "import.db").unlink(missing_ok=True)
            runs_.append(import_once(url, csv_path))
            print(json.dumps({backend: runs_[-1]}), flush=True)
        seconds = statistics.median(r["seconds"] for r in runs_)
        results[backend] = {
            "runs_seconds": [round(r["seconds"], 1) for r in runs_],
            "median_seconds": round(seconds, 1),
            "median_rows_per_second": round(rows / seconds),
            "imported": runs_[0]["imported"],
            "rejected": runs_[0]["rejected"],
            "peak_mb": max(r["peak_mb"] for r in runs_),
            "all_processes_peak_mb": max(r["all_processes_peak_mb"] for r in runs_),
        }
    return results


def sent(db: Database, campaign_id: int) -> int:
    m = messages.c
    with db.session() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(messages)
                .where(m.campaign_id == campaign_id, m.status == "accepted")
            )
            or 0
        )


def bench_dispatch(sizes: list[int], seconds: float, workdir: Path) -> dict[str, Any]:
    results: dict[str, Any] = {"seconds_each": seconds}
    with bench_stack(PG_URL) as stack:
        env = stack.env
        queues = [names.provider_queue(VENDOR), names.MAINTENANCE_QUEUE]
        stack.start(celery_worker(env, workdir, queues, concurrency=2, name="worker"))
        stack.start(celery_beat(env, workdir))
        client = redis.Redis.from_url(stack.broker_url)
        db = Database(PG_URL)
        service = Campaigns(stack.settings, stack.catalog, db)
        for size in sizes:
            reset_database(PG_URL)
            csv_path = workdir / f"dispatch-{size}.csv"
            write_csv(csv_path, size)
            campaign_id = new_campaign(PG_URL, Path(env["CATALOG_PATH"]))
            with csv_path.open("rb") as stream:
                imported = service.import_csv(campaign_id, stream).imported
            baseline = int(client.info("memory")["used_memory"])
            with RedisProbe(client, [names.provider_queue(VENDOR)]) as probe:
                service.start(campaign_id)
                time.sleep(seconds)
                service.cancel(campaign_id)
            results[str(size)] = {
                "recipients": imported,
                "sent_in_window": sent(db, campaign_id),
                "peak_ids_in_redis": probe.peak_ids,
                "redis_baseline_mb": round(baseline / 2**20, 2),
                "redis_peak_mb": round(probe.peak_memory / 2**20, 2),
            }
            print(json.dumps({size: results[str(size)]}), flush=True)
        # Contrast: every id of the largest campaign on the broker at once.
        largest = max(sizes)
        client.delete("bench.all-at-once")
        before = int(client.info("memory")["used_memory"])
        app = create_app(stack.settings.model_copy(update={"redis_url": stack.broker_url}))
        publish(app, stack.catalog, [(i, VENDOR, 0) for i in range(1, largest + 1)])
        # publish() used the vendor's queue; move what it wrote aside and measure.
        queue = names.provider_queue(VENDOR)
        after = int(client.info("memory")["used_memory"])
        client.delete(queue)
        app.close()
        results["all_at_once"] = {
            "ids": largest,
            "redis_mb": round((after - before) / 2**20, 2),
        }
        db.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dispatch-sizes", default="100000,1000000")
    parser.add_argument("--dispatch-seconds", type=float, default=20.0)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--child-import", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_import:
        url, campaign_id, csv_path = args.child_import
        child_import(url, int(campaign_id), csv_path)
        return
    with tempfile.TemporaryDirectory(prefix="smsdispatch-campaign-bench-") as tmp:
        workdir = Path(tmp)
        figures = {
            "import": bench_import(args.rows, args.runs, workdir),
            "dispatch": bench_dispatch(
                [int(s) for s in args.dispatch_sizes.split(",")], args.dispatch_seconds, workdir
            ),
        }
    print(json.dumps(figures, indent=2))
    if not args.no_write:
        write_section("campaign", "Campaigns: import and dispatch", figures, table(figures), NOTES)


def table(figures: dict[str, Any]) -> str:
    imp = figures["import"]
    rows = [
        "| import of a CSV | runs (s) | median s | rows/s | importer peak MB "
        "| with its pool, peak MB | target |",
        "|---|---|---|---|---|---|---|",
    ]
    for backend in ("sqlite", "postgresql"):
        r = imp[backend]
        rows.append(
            f"| {imp['rows']:,} rows, {backend} | {', '.join(map(str, r['runs_seconds']))} "
            f"| **{r['median_seconds']}** | {r['median_rows_per_second']:,} | **{r['peak_mb']}** "
            f"| **{r['all_processes_peak_mb']}** | < 60 s, < 300 MB |"
        )
    dis = figures["dispatch"]
    rows += [
        "",
        f"| dispatching for {dis['seconds_each']:.0f} s | sent | peak ids in Redis "
        "| Redis peak MB (baseline) |",
        "|---|---|---|---|",
    ]
    for size, r in dis.items():
        if not size.isdigit():
            continue
        rows.append(
            f"| {int(size):,} recipients | {r['sent_in_window']:,} | **{r['peak_ids_in_redis']}** "
            f"| **{r['redis_peak_mb']}** ({r['redis_baseline_mb']}) |"
        )
    everything = dis["all_at_once"]
    rows.append(
        f"| without a dispatcher: {everything['ids']:,} ids published at once "
        f"| | {everything['ids']:,} | +{everything['redis_mb']} |"
    )
    return "\n".join(rows)


NOTES = (
    "The import runs in a child process, as `smsdispatch campaign import` does: CSV "
    "streamed, numbers parsed in a pool of one process per core (forked from a fork server "
    "that imported only the preparation module), rows stored 5,000 per transaction (COPY on "
    "PostgreSQL). 'importer peak MB' is that process's peak RSS; 'with its pool' is the "
    "peak of the proportional set size (PSS: shared pages counted once) of the importer, "
    "the fork server and the pool workers together, sampled every 0.2 s. The dispatch runs "
    "use the catalog's Messangi limit (6,000 a minute) and the default 10 s horizon, so the "
    "dispatcher keeps about 1,000 messages released; the peak is the same for every campaign size."
)


if __name__ == "__main__":
    main()
