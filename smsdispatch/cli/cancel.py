"""`smsdispatch cancel ID`: cancel one message no vendor may have received yet."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from smsdispatch.cli.errors import fail
from smsdispatch.config.settings import get_settings
from smsdispatch.store.control import Cancel, cancel_unsent, too_late
from smsdispatch.store.db import Database

console = Console()


def cancel(message_id: Annotated[int, typer.Argument(help="The message's id.", min=1)]) -> None:
    """Cancel a message still held or queued: it is never sent (exit 1 if too late)."""
    db = Database(get_settings().database_url)
    with db.session() as session, session.begin():
        what, current = cancel_unsent(
            session, message_id, db.clock(), "cancelled by an operator before it was sent"
        )
    if what is Cancel.NOT_FOUND:
        fail(f"no message {message_id}")
    if what is Cancel.TOO_LATE:
        fail(too_late(message_id, current), code=1)
    console.print(f"message {message_id} cancelled")
