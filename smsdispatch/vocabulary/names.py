"""Stable task names and queues: the contract with other applications.

Another application (in any language with a Celery client) writes rows to
the `messages` table with status `queued`, then enqueues their ids:

    celery_app.send_task("smsdispatch.send", args=[[id1, id2, ...]], queue="sms.cue")

Task arguments are message ids only, never numbers, texts or credentials.
"""

from collections.abc import Iterable

SEND = "smsdispatch.send"
SWEEP = "smsdispatch.sweep"
DISPATCH = "smsdispatch.dispatch"
RECONCILE = "smsdispatch.reconcile"
REBALANCE = "smsdispatch.rebalance"
CALLBACKS_SWEEP = "smsdispatch.callbacks.sweep"
CALLBACKS_DELIVER = "smsdispatch.callbacks.deliver"

DEFAULT_QUEUE = "sms.default"
MAINTENANCE_QUEUE = "sms.maintenance"
# Status callbacks to client applications: a queue of their own, so a slow
# receiver never holds a send (smsdispatch/callbacks/).
CALLBACKS_QUEUE = "callbacks"


def queues(providers: Iterable[str], *, bulk: bool = True, urgent: bool = True) -> list[str]:
    """The send queues of these vendors: their bulk lanes, their urgent lanes, or both."""
    lanes = [lane for lane, wanted in ((0, bulk), (1, urgent)) if wanted]
    return [provider_queue(p, lane) for p in providers for lane in lanes]


def provider_queue(provider: str, priority: int = 0) -> str:
    """The vendor's queue; urgent messages (priority > 0) have a lane of their own."""
    return f"sms.{provider}.priority" if priority > 0 else f"sms.{provider}"
