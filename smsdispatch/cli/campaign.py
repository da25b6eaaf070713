"""`smsdispatch campaign ...`: create, fill, preview, schedule and control campaigns."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from smsdispatch.campaigns.recipients import BadRow
from smsdispatch.campaigns.service import CampaignNotFound, Campaigns, CampaignSpec
from smsdispatch.config.catalog import load_catalog
from smsdispatch.config.settings import get_settings
from smsdispatch.store.db import Database
from smsdispatch.vocabulary.errors import ConflictError, InputError
from smsdispatch.vocabulary.status import FINAL, UNSENT, CampaignStatus, MessageStatus

app = typer.Typer(help="Campaigns: a template sent to a recipient list.", no_args_is_help=True)
console = Console()

Id = Annotated[int, typer.Argument(help="The campaign's id.")]


def service() -> Campaigns:
    settings = get_settings()
    return Campaigns(settings, load_catalog(settings.catalog_path), Database(settings.database_url))


@contextmanager
def reported() -> Iterator[None]:
    """Operator errors as one red line and exit status 2, not a traceback.

    Bad input and a status that refuses the action are the operator's to act
    on; so is an unreadable --start or --end (fromisoformat's ValueError).
    """
    try:
        yield
    except (InputError, ConflictError, CampaignNotFound, ValueError) as exc:
        console.print(f"[red]error[/red] {exc}")
        raise typer.Exit(2) from None


def parse_when(value: str | None, zone: str) -> datetime | None:
    """ISO 8601; a time without an offset is read in `zone`."""
    if value is None:
        return None
    when = datetime.fromisoformat(value)
    return when if when.tzinfo else when.replace(tzinfo=ZoneInfo(zone))


@app.command()
def create(
    name: Annotated[str, typer.Option(help="What operators call it.")],
    provider: Annotated[str, typer.Option(help="cue, messangi, smsbuddy, restcomm or skycore.")],
    template: Annotated[str, typer.Option(help="Text with {placeholders} from CSV columns.")],
    sender: Annotated[str | None, typer.Option(help="Sender id or pool:<name>.")] = None,
    recipients: Annotated[Path | None, typer.Option(help="CSV file to import now.")] = None,
    phone_column: Annotated[str, typer.Option(help="The CSV column with numbers.")] = "phone",
    region: Annotated[str | None, typer.Option(help="Region for local numbers, e.g. US.")] = None,
    start: Annotated[str | None, typer.Option(help="Start time, ISO 8601.")] = None,
    end: Annotated[str | None, typer.Option(help="Unsent messages expire at this time.")] = None,
    timezone: Annotated[str, typer.Option(help="Zone for times without an offset.")] = "UTC",
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
            c["provider"],
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
    table = Table(show_header=False, title=f"campaign {campaign_id}: {c['name']}")
    for label in ("status", "provider", "sender", "template", "start_at", "end_at", "timezone"):
        value = c[label]
        if isinstance(value, datetime):
            value = f"{value.astimezone(ZoneInfo(c['timezone'])):%Y-%m-%d %H:%M %Z}"
        table.add_row(label, "" if value is None else str(value))
    table.add_row("imported / rejected", f"{c['imported']} / {c['rejected']}")
    for status, n in sorted(counts.items()):
        table.add_row(f"  {status}", str(n))
    console.print(table)


@app.command()
def watch(
    campaign_id: Id,
    interval: Annotated[float, typer.Option(help="Seconds between refreshes.")] = 1.0,
) -> None:
    """A live progress bar: sent, accepted, delivered and failed, and the rate."""
    with reported():
        campaigns = service()
        total = campaigns.get(campaign_id)["imported"]
    progress = Progress(
        TextColumn("[bold]campaign {task.fields[id]}[/bold] {task.fields[status]}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} sent"),
        TextColumn(
            "accepted {task.fields[accepted]} · delivered {task.fields[delivered]} · "
            "failed {task.fields[failed]} · {task.fields[rate]:.1f}/s"
        ),
        TimeElapsedColumn(),
        console=console,
    )
    last: tuple[float, int] | None = None
    with progress:
        task = progress.add_task("", total=total, id=campaign_id, **_fields({}, "", 0.0))
        while True:
            status = campaigns.get(campaign_id)["status"]
            counts = campaigns.live_counts(campaign_id)
            sent = sent_count(counts)
            now = time.monotonic()
            rate = (sent - last[1]) / (now - last[0]) if last and now > last[0] else 0.0
            last = (now, sent)
            progress.update(task, completed=sent, **_fields(counts, status, rate))
            if status in (CampaignStatus.COMPLETED, CampaignStatus.CANCELLED):
                break
            time.sleep(interval)


def sent_count(counts: dict[str, int]) -> int:
    """Messages the campaign is done sending: everything but held, queued, sending."""
    return sum(n for s, n in counts.items() if s not in UNSENT)


def _fields(counts: dict[str, int], status: str, rate: float) -> dict[str, Any]:
    failed = sum(n for s, n in counts.items() if s in FINAL and s != MessageStatus.DELIVERED)
    return {
        "status": status,
        "accepted": counts.get(MessageStatus.ACCEPTED, 0),
        "delivered": counts.get(MessageStatus.DELIVERED, 0),
        "failed": failed,
        "rate": rate,
    }
