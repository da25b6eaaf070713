"""The send task: ids in, rows updated. The work is in sending.pipeline."""

from __future__ import annotations

from celery import shared_task

from sending.pipeline import send_messages
from workers import names
from workers.runtime import get_runtime


@shared_task(name=names.SEND)
def send(message_ids: list[int]) -> None:
    """Send these messages (ids only: nothing personal crosses the broker)."""
    send_messages(get_runtime(), message_ids)
