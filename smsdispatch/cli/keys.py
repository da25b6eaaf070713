"""`smsdispatch keys ...`: the HTTP API's keys, added and revoked without a restart.

The environment's API_KEYS are accepted as well; these live in the database,
hashed, and a revoked one is refused from the API's next request on.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from smsdispatch.cli.errors import fail
from smsdispatch.config.settings import get_settings
from smsdispatch.producer.callback_urls import RefusedCallbackUrl, check_url
from smsdispatch.store import api_keys
from smsdispatch.store.db import Database

app = typer.Typer(help="API keys: create, list, revoke.", no_args_is_help=True)
console = Console()


@app.command()
def create(
    name: Annotated[str, typer.Argument(help="Who or what uses it (unique among live keys).")],
    callback: Annotated[
        str | None,
        typer.Option(
            "--callback",
            help="The status callback URL of its messages that name none.",
        ),
    ] = None,
) -> None:
    """Make a key and print it: it is shown this once, and only its hash is kept.

    Also prints the secret its status callbacks are signed with (once too).
    """
    if not name.strip() or len(name) > 100:
        fail("a name of 1 to 100 characters is required")
    if name.isdigit():
        # `keys revoke 2024` revokes key number 2024: a name of digits could never be named.
        fail(f"{name!r}: a name needs a letter (digits alone are read as a key's id)")
    settings = get_settings()
    if callback is not None:
        try:
            check_url(callback, allow_private=settings.callback_allow_private)
        except RefusedCallbackUrl as exc:
            fail(f"--callback: {exc}", code=2)
    db = Database(settings.database_url)
    try:
        with db.session() as session, session.begin():
            made = api_keys.create(session, name, db.clock(), callback_url=callback)
    except api_keys.ApiKeyNameTaken as exc:
        fail(str(exc))
    console.print(
        f"key {made.id} {name!r} created; its status callbacks are signed with "
        f"{made.callback_secret} (verify them with smsdispatch.callbacks.verify_signature); "
        "both are shown only now. The key:",
        highlight=False,
        soft_wrap=True,
    )
    # Alone on its line, unstyled, for a script to read.
    print(made.key)


@app.command("list")
def list_() -> None:
    """Every key's id, name, and when it was created and revoked (never the key)."""
    db = Database(get_settings().database_url)
    with db.session() as session:
        rows = api_keys.all_keys(session)
    table = Table("id", "name", "created (UTC)", "revoked (UTC)")
    for row in rows:
        revoked = f"{row.revoked_at:%Y-%m-%d %H:%M:%S}" if row.revoked_at else ""
        table.add_row(str(row.id), row.name, f"{row.created_at:%Y-%m-%d %H:%M:%S}", revoked)
    console.print(table)


@app.command()
def revoke(which: Annotated[str, typer.Argument(help="The key's id, or its name.")]) -> None:
    """Refuse the key from the API's next request on."""
    db = Database(get_settings().database_url)
    try:
        with db.session() as session, session.begin():
            row = api_keys.revoke(session, which, db.clock())
    except api_keys.ApiKeyNotFound as exc:
        fail(str(exc))
    console.print(f"key {row.id} {row.name!r} revoked", highlight=False)
