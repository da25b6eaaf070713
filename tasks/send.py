"""The send task: ids in, rows updated. The work is in sending.pipeline."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from sending.pipeline import ClaimFailed, send_messages
from workers import names
from workers.runtime import get_runtime

# While the database cannot be reached to claim, the ids go back on the broker
# for this long: a few seconds, never a long countdown (DESIGN.md invariant 5).
CLAIM_RETRY_SECONDS = 3


@shared_task(name=names.SEND, bind=True, max_retries=None)
def send(self: Any, message_ids: list[int]) -> None:
    """Send these messages (ids only: nothing personal crosses the broker)."""
    try:
        send_messages(get_runtime(), message_ids)
    except ClaimFailed as exc:
        raise self.retry(exc=exc, countdown=CLAIM_RETRY_SECONDS) from exc
