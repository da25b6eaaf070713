"""Stable task names and queues: the contract with other applications.

Another application (in any language with a Celery client) writes rows to
the `messages` table with status `queued`, then enqueues their ids:

    celery_app.send_task("smsdispatch.send", args=[[id1, id2, ...]], queue="sms.cue")

Task arguments are message ids only, never numbers, texts or credentials.
"""

SEND = "smsdispatch.send"
SWEEP = "smsdispatch.sweep"

DEFAULT_QUEUE = "sms.default"
MAINTENANCE_QUEUE = "sms.maintenance"


def provider_queue(provider: str) -> str:
    return f"sms.{provider}"
