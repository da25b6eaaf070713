"""`smsdispatch vendor ...`: see, pause and resume vendors for every worker."""

from __future__ import annotations

import getpass
from typing import Annotated

import redis
import typer
from rich.console import Console
from rich.table import Table

from smsdispatch.cli.errors import fail
from smsdispatch.config.catalog import UnknownProviderError, load_catalog
from smsdispatch.config.settings import get_settings
from smsdispatch.limits.control import pause_vendor, resume_vendor, vendor_pauses
from smsdispatch.limits.pauses import Pause
from smsdispatch.store.db import Database

app = typer.Typer(help="Vendors: pause and resume sending to them.", no_args_is_help=True)
console = Console()

Vendor = Annotated[str, typer.Argument(help="The vendor: cue, messangi, smsbuddy, ...")]


def operator() -> str:
    """Who set a pause from this shell, for the next operator to ask."""
    try:
        return f"{getpass.getuser()} (cli)"
    except (OSError, KeyError):
        return "operator (cli)"


def describe(pause: Pause) -> str:
    since = f", since {pause.since:%Y-%m-%d %H:%M:%S} UTC" if pause.since else ""
    return f"paused by {pause.by}{since}, {pause.until_text}: {pause.reason}"


@app.command("list")
def list_() -> None:
    """Every vendor and its pause: who set it, since and until when, and why."""
    settings = get_settings()
    client = redis.Redis.from_url(settings.redis_url)
    table = Table("vendor", "state", "by", "since (UTC)", "until (UTC)", "reason")
    for provider, pause in vendor_pauses(client, load_catalog(settings.catalog_path)):
        if pause is None:
            table.add_row(provider, "sending", "", "", "", "")
            continue
        table.add_row(
            provider,
            "paused",
            pause.by,
            f"{pause.since:%H:%M:%S}" if pause.since else "",
            f"{pause.until:%H:%M:%S}" if pause.until else "until resumed",
            pause.reason,
        )
    console.print(table)


@app.command()
def pause(
    vendor: Vendor,
    reason: Annotated[str, typer.Option(help="Why, for the next operator.")] = "paused by hand",
    for_: Annotated[
        float | None,
        typer.Option("--for", help="Seconds; without it, until `vendor resume`.", min=1),
    ] = None,
) -> None:
    """Stop sending to a vendor from every worker: their messages wait, none fails."""
    settings = get_settings()
    client = redis.Redis.from_url(settings.redis_url)
    try:
        found = pause_vendor(
            client,
            load_catalog(settings.catalog_path),
            vendor,
            reason=reason,
            by=operator(),
            seconds=for_,
        )
    except UnknownProviderError as exc:
        fail(str(exc))
    console.print(f"{vendor} {describe(found)}")


@app.command()
def resume(vendor: Vendor) -> None:
    """Send to a vendor again now, whoever paused it; its waiting messages go at once."""
    settings = get_settings()
    client = redis.Redis.from_url(settings.redis_url)
    try:
        resumed = resume_vendor(
            client, Database(settings.database_url), load_catalog(settings.catalog_path), vendor
        )
    except UnknownProviderError as exc:
        fail(str(exc))
    lifted = describe(resumed.lifted) if resumed.lifted else "was not paused"
    console.print(f"{vendor} resumed ({lifted}); {resumed.released} waiting messages due now")
