"""`smsdispatch optout ...`: the numbers every send path refuses to send to."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from smsdispatch.cli.errors import fail
from smsdispatch.config.settings import get_settings
from smsdispatch.producer.validation import InvalidMessage, normalize_number
from smsdispatch.store import optouts
from smsdispatch.store.db import Database

app = typer.Typer(help="The opt-out list.", no_args_is_help=True)
console = Console()

Numbers = Annotated[list[str], typer.Argument(help="Numbers, E.164 or local with --region.")]
Region = Annotated[str | None, typer.Option(help="Region for local numbers, e.g. US.")]


def normalized(numbers: list[str], region: str | None) -> list[str]:
    """E.164 numbers; a bad one stops the command and is named."""
    out: list[str] = []
    for number in numbers:
        try:
            out.append(normalize_number(number, region))
        except InvalidMessage as exc:
            fail(f"{number!r}: {exc.reason}")
    return out


@app.command()
def add(
    numbers: Numbers,
    region: Region = None,
    reason: Annotated[str | None, typer.Option(help="Why (STOP reply, complaint...).")] = None,
) -> None:
    """Put numbers on the list."""
    db = Database(get_settings().database_url)
    with db.session() as session, session.begin():
        added = optouts.add(session, normalized(numbers, region), db.clock(), reason)
    console.print(f"{added} added")


@app.command()
def remove(numbers: Numbers, region: Region = None) -> None:
    """Take numbers off the list."""
    db = Database(get_settings().database_url)
    with db.session() as session, session.begin():
        removed = optouts.remove(session, normalized(numbers, region))
    console.print(f"{removed} removed")


@app.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="One number per line (a CSV's first column).")],
    region: Region = None,
    reason: Annotated[str | None, typer.Option(help="Why they opted out.")] = None,
) -> None:
    """Add every number in a file; report the lines that are not numbers."""
    db = Database(get_settings().database_url)
    good: list[str] = []
    bad = 0
    with path.open(encoding="utf-8", errors="replace") as lines:
        for line_no, line in enumerate(lines, start=1):
            raw = line.split(",")[0].strip()
            if not raw or (line_no == 1 and not any(ch.isdigit() for ch in raw)):
                continue  # blank, or a header
            try:
                good.append(normalize_number(raw, region))
            except InvalidMessage as exc:
                bad += 1
                console.print(f"[yellow]line {line_no}[/yellow]: {raw!r} {exc.reason}")
    with db.session() as session, session.begin():
        added = optouts.add(session, good, db.clock(), reason)
    console.print(f"{added} added ({len(good) - added} already on the list); {bad} lines rejected")


@app.command("count")
def count_() -> None:
    """How many numbers are on the list."""
    with Database(get_settings().database_url).session() as session:
        console.print(optouts.count(session))
