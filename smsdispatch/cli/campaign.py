"""`smsdispatch campaign ...`: create, fill, preview, schedule and control campaigns."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

from smsdispatch.campaigns.progress import (
    ENDED,
    SlidingRate,
    all_final,
    awaiting_reports,
    finished,
    phase,
    sent_count,
    status_line,
)
from smsdispatch.campaigns.recipients import BadRow
from smsdispatch.campaigns.service import (
    CampaignNotFound,
    Campaigns,
    CampaignSpec,
    Preview,
    VendorShare,
    shown_provider,
)
from smsdispatch.cli.errors import fail, one_line
from smsdispatch.config.catalog import load_catalog
from smsdispatch.config.settings import get_settings
from smsdispatch.store.db import Database
from smsdispatch.vocabulary.errors import ConflictError, InputError

app = typer.Typer(help="Campaigns: a template sent to a recipient list.", no_args_is_help=True)
console = Console()

Id = Annotated[int, typer.Argument(help="The campaign's id.")]


def service() -> Campaigns:
    settings = get_settings()
    return Campaigns(settings, load_catalog(settings.catalog_path), Database(settings.database_url))


@contextmanager
def reported() -> Iterator[None]:
    """Operator errors as one line on stderr and exit status 2, not a traceback.

    Bad input and a status that refuses the action are the operator's to act
    on; so is an unreadable --start or --end (fromisoformat's ValueError).
    """
    try:
        yield
    except (InputError, ConflictError, CampaignNotFound, ValueError) as exc:
        fail(one_line(exc))


def parse_when(value: str | None, zone: str) -> datetime | None:
    """ISO 8601; a time without an offset is read in `zone`."""
    if value is None:
        return None
    when = datetime.fromisoformat(value)
    return when if when.tzinfo else when.replace(tzinfo=ZoneInfo(zone))


@app.command()
def create(
    name: Annotated[str, typer.Option(help="What operators call it.")],
    template: Annotated[str, typer.Option(help="Text with {placeholders} from CSV columns.")],
    provider: Annotated[
        str | None,
        typer.Option(
            help="cue, messangi, smsbuddy, restcomm or skycore; left out or 'auto': each "
            "recipient's message is routed by the catalog's routes."
        ),
    ] = None,
    sender: Annotated[str | None, typer.Option(help="Sender id or pool:<name>.")] = None,
    recipients: Annotated[Path | None, typer.Option(help="CSV file to import now.")] = None,
    phone_column: Annotated[str, typer.Option(help="The CSV column with numbers.")] = "phone",
    region: Annotated[str | None, typer.Option(help="Region for local numbers, e.g. US.")] = None,
    start: Annotated[str | None, typer.Option(help="Start time, ISO 8601.")] = None,
    end: Annotated[str | None, typer.Option(help="Unsent messages expire at this time.")] = None,
    timezone: Annotated[str, typer.Option(help="Zone for times without an offset.")] = "UTC",
    status_callback: Annotated[
        str | None,
        typer.Option(help="URL to POST each message's status changes to (CALLBACK_SECRET)."),
    ] = None,
) -> None:
    """Create a draft campaign (and import its recipients); print its id."""
    with reported():
        campaigns = service()
        campaign_id = campaigns.create(
            CampaignSpec(
                name=name,
                provider=provider,
                template=template,
                sender=sender,
                start_at=parse_when(start, timezone),
                end_at=parse_when(end, timezone),
                timezone=timezone,
                default_region=region,
                status_callback=status_callback,
            )
        )
        console.print(f"campaign {campaign_id} created (draft)")
        if recipients is not None:
            _import(campaigns, campaign_id, recipients, phone_column, None)


@app.command("import")
def import_(
    campaign_id: Id,
    recipients: Annotated[Path, typer.Argument(help="CSV file: a phone column and parameters.")],
    phone_column: Annotated[str, typer.Option(help="The CSV column with numbers.")] = "phone",
    rejects: Annotated[
        Path | None, typer.Option(help="Write every rejected row here (line, reason).")
    ] = None,
) -> None:
    """Import recipients from a CSV file; report each rejected row by line."""
    with reported():
        _import(service(), campaign_id, recipients, phone_column, rejects)


def _import(
    campaigns: Campaigns, campaign_id: int, path: Path, phone_column: str, rejects: Path | None
) -> None:
    rejects = rejects or path.with_name(path.name + ".rejected.csv")
    shown = 0

    with rejects.open("w", encoding="utf-8") as out, path.open("rb") as stream:
        out.write("line,reason\n")

        def reject(bad: BadRow) -> None:
            nonlocal shown
            reason = bad.reason.replace('"', '""')
            out.write(f'{bad.line},"{reason}"\n')
            if shown < 20:
                console.print(f"[yellow]line {bad.line}[/yellow]: {bad.reason}")
                shown += 1

        with Progress(
            TextColumn("importing"), TextColumn("{task.fields[done]} rows"), transient=True
        ) as progress:
            task = progress.add_task("import", done=0)
            result = campaigns.import_csv(
                campaign_id,
                stream,
                phone_column=phone_column,
                on_reject=reject,
                on_progress=lambda r: progress.update(task, done=r.imported + r.rejected),
            )
    console.print(
        f"imported {result.imported}; rejected {result.rejected} "
        f"({result.duplicates} duplicates, {result.opted_out} opted out)"
    )
    if result.rejected:
        console.print(f"every rejected row, with its line and reason: {rejects}")
    else:
        rejects.unlink()


@app.command()
def preview(
    campaign_id: Id, samples: Annotated[int, typer.Option(help="Messages to show.")] = 5
) -> None:
    """A few rendered messages, their encoding and segments, and the total cost."""
    with reported():
        result = service().preview(campaign_id, samples)
    table = Table("to", "encoding", "segments", "text", title=f"campaign {campaign_id}")
    for sample in result.samples:
        table.add_row(sample.recipient, sample.encoding, str(sample.segments), sample.text)
    console.print(table)
    encodings = ", ".join(f"{n} {e}" for e, n in sorted(result.by_encoding.items()))
    console.print(
        f"{result.messages} messages ({encodings}); at most {result.max_segments} segments "
        f"each; [bold]{result.segments} segments in all[/bold] (vendors bill per segment)"
    )
    if result.vendors:
        console.print(split_table(result))
    if result.unroutable:
        console.print(
            f"[yellow]{result.unroutable} messages: no vendor of their route can carry them "
            "now[/yellow]"
        )


def split_table(result: Preview) -> Table:
    """Per vendor: expected messages, segments and cost (routed: a weight share)."""
    title = "expected split by current weights" if result.routed else "vendor"
    table = Table(
        "vendor",
        Column("messages", justify="right"),
        Column("segments", justify="right"),
        Column("cost", justify="right"),
        title=title,
        caption="cost = segments x the route vendor's price_per_segment",
        caption_justify="left",
    )
    for v in result.vendors:
        table.add_row(v.vendor, f"{v.messages:,.0f}", f"{v.segments:,.0f}", money(v))
    return table


def money(v: VendorShare) -> str:
    if v.cost is not None:
        return f"{v.cost:,.4f}"
    if v.unpriced_segments < v.segments:
        return f"no price for {v.unpriced_segments:,.0f} segments"
    return "no price"


@app.command()
def schedule(
    campaign_id: Id,
    start: Annotated[str | None, typer.Option(help="Start time, ISO 8601.")] = None,
    end: Annotated[str | None, typer.Option(help="Unsent messages expire at this time.")] = None,
    timezone: Annotated[
        str | None, typer.Option(help="Zone for times without an offset (default: the campaign's).")
    ] = None,
) -> None:
    """Schedule a draft: beat starts it at its start time."""
    with reported():
        campaigns = service()
        zone = timezone or campaigns.get(campaign_id)["timezone"]
        campaigns.schedule(
            campaign_id, parse_when(start, zone), parse_when(end, zone), timezone=timezone
        )
    console.print(f"campaign {campaign_id} scheduled")


@app.command()
def start(campaign_id: Id) -> None:
    """Start now, whatever the schedule says."""
    with reported():
        service().start(campaign_id)
    console.print(f"campaign {campaign_id} running")


@app.command()
def pause(campaign_id: Id) -> None:
    """Stop releasing messages and take back those released but not yet sent."""
    with reported():
        taken = service().pause(campaign_id)
    console.print(f"campaign {campaign_id} paused; {taken} released messages taken back")


@app.command()
def resume(campaign_id: Id) -> None:
    """Carry on from where the pause stopped it."""
    with reported():
        service().resume(campaign_id)
    console.print(f"campaign {campaign_id} resumed")


@app.command()
def cancel(campaign_id: Id) -> None:
    """Stop for good: every unsent message becomes `cancelled`."""
    with reported():
        count = service().cancel(campaign_id)
    console.print(f"campaign {campaign_id} cancelled; {count} unsent messages cancelled")


@app.command("list")
def list_() -> None:
    """Every campaign, newest first, with its stored counters."""
    table = Table("id", "name", "vendor", "status", "start", "imported", "counts")
    for c in service().list():
        counts = ", ".join(f"{k} {v}" for k, v in sorted((c["counts"] or {}).items()))
        start_at = f"{c['start_at']:%Y-%m-%d %H:%M} UTC" if c["start_at"] else ""
        table.add_row(
            str(c["id"]),
            c["name"],
            shown_provider(c["provider"]),
            c["status"],
            start_at,
            str(c["imported"]),
            counts,
        )
    console.print(table)


@app.command()
def show(campaign_id: Id) -> None:
    """One campaign: its settings and its messages by status, counted now."""
    with reported():
        campaigns = service()
        c = campaigns.get(campaign_id)
        counts = campaigns.live_counts(campaign_id)
        by_vendor = campaigns.live_vendor_counts(campaign_id)
    table = Table(show_header=False, title=f"campaign {campaign_id}: {c['name']}")
    for label in ("status", "provider", "sender", "template", "start_at", "end_at", "timezone"):
        value = shown_provider(c[label]) if label == "provider" else c[label]
        if label == "sender" and c["provider"] is None:
            value = "each route's"
        if isinstance(value, datetime):
            value = f"{value.astimezone(ZoneInfo(c['timezone'])):%Y-%m-%d %H:%M %Z}"
        table.add_row(label, "" if value is None else str(value))
    table.add_row("imported / rejected", f"{c['imported']} / {c['rejected']}")
    for status, n in sorted(counts.items()):
        table.add_row(f"  {status}", str(n))
    if c["provider"] is None:
        table.add_row("messages per vendor", "")
        for vendor, n in sorted(by_vendor.items()):
            table.add_row(f"  {vendor}", str(n))
    console.print(table)


@app.command()
def watch(
    campaign_id: Id,
    interval: Annotated[float, typer.Option(help="Seconds between refreshes.")] = 1.0,
    report_wait: Annotated[
        float,
        typer.Option(help="Once all is sent, how long to wait for the last delivery reports (s)."),
    ] = 900.0,
) -> None:
    """Live progress: messages sent, each status, and the sending rate over the
    last 10 s; stays until every message is final (or `--report-wait` runs out)."""
    with reported():
        campaigns = service()
        total = campaigns.get(campaign_id)["imported"]
    bar = Progress(
        TextColumn("[bold]campaign {task.fields[id]}[/bold] {task.fields[phase]}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} sent"),
        TextColumn("{task.fields[statuses]} · {task.fields[rate]:.1f}/s (last 10 s)"),
        TimeElapsedColumn(),
        console=console,
    )
    rate = SlidingRate(window=10.0)
    counts: dict[str, int] = {}
    ended_at: float | None = None
    with bar:
        task = bar.add_task("", total=total, id=campaign_id, phase="", statuses="", rate=0.0)
        try:
            while True:
                status = campaigns.get(campaign_id)["status"]
                counts = campaigns.live_counts(campaign_id)
                now = time.monotonic()
                sent = sent_count(counts)
                bar.update(
                    task,
                    completed=sent,
                    phase=phase(status, counts),
                    statuses=status_line(counts),
                    rate=rate.add(now, sent),
                )
                if finished(status, counts):
                    break
                if status in ENDED:
                    ended_at = ended_at or now
                    if now - ended_at >= report_wait:
                        break
                time.sleep(interval)
        except KeyboardInterrupt:
            pass
    waiting = awaiting_reports(counts)
    if waiting:
        console.print(
            f"stopped watching: {waiting} message{'' if waiting == 1 else 's'} still awaiting "
            "delivery reports "
            f"(`smsdispatch campaign show {campaign_id}` counts them now)"
        )
    elif counts and all_final(counts):
        console.print(f"campaign {campaign_id}: every message final")
