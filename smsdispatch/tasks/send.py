"""The send task: ids in, rows updated. The work is in smsdispatch.sending.pipeline."""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import shared_task

from smsdispatch.sending.pipeline import ClaimFailed, send_messages
from smsdispatch.vocabulary import names
from smsdispatch.workers.runtime import get_runtime

log = logging.getLogger(__name__)

# While the database cannot be reached to claim, the ids go back on the broker
# after this pause, slept here: a Celery countdown would be an ETA written with
# this host's clock and compared with another's (DESIGN.md invariant 6).
CLAIM_RETRY_SECONDS = 3.0


@shared_task(name=names.SEND, bind=True)
def send(self: Any, message_ids: list[int]) -> None:
    """Send these messages (ids only: nothing personal crosses the broker)."""
    try:
        send_messages(get_runtime(), message_ids)
    except ClaimFailed as exc:
        log.warning("%s; enqueued again in %.0fs", exc, CLAIM_RETRY_SECONDS)
        time.sleep(CLAIM_RETRY_SECONDS)
        queue = (self.request.delivery_info or {}).get("routing_key") or names.DEFAULT_QUEUE
        self.apply_async(args=[message_ids], queue=queue)
