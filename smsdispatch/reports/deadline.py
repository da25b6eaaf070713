"""The last word on a report that never came: past its vendor's report
deadline (catalog `report_deadline_seconds`), an accepted message is given a
final status that says so.

Reconciliation asks the vendors that have a status query first; for Cue and
Skycore, which document none, a lost report would otherwise leave the
message `accepted` for ever, and its sender waiting. Runs from the
reconcile task, at most once per `PERIOD_SECONDS` across every worker (the
statement reads every `accepted` row of a vendor: cheap once a minute, not
every few seconds). The status change writes the message's status callback
in the same transaction, as any other does.
"""

from __future__ import annotations

import logging
from collections import Counter

import redis

from smsdispatch.queueing.periodic import take_turn
from smsdispatch.queueing.services import Services
from smsdispatch.store.deadlines import expire_unreported
from smsdispatch.vocabulary import keys

log = logging.getLogger(__name__)

PERIOD_SECONDS = 60.0


def expire_overdue(rt: Services, *, force: bool = False) -> Counter[str]:
    """Expire every vendor's messages past its report deadline (on this
    period's turn, or now if `force`); how many, by vendor."""
    if not force and not take_turn(rt.redis, "report-deadline", PERIOD_SECONDS, share=1.0):
        return Counter()
    now = rt.clock()
    expired: Counter[str] = Counter()
    with rt.db.session() as session, session.begin():
        for name, entry in rt.catalog.providers.items():
            expired[name] = expire_unreported(session, name, now, entry.report_deadline_seconds)
    expired = +expired
    if expired:
        _count(rt.redis, expired)
        log.warning("expired for want of a final report: %s", dict(expired))
    return expired


def _count(client: redis.Redis, expired: Counter[str]) -> None:
    """`smsdispatch_stale_messages_total{provider}` (monitoring/collector.py); best effort."""
    pipe = client.pipeline(transaction=False)
    for provider, n in expired.items():
        pipe.hincrby(keys.METRICS_STALE, provider, n)
    try:
        pipe.execute()
    except redis.RedisError:
        log.warning("could not count %d expired messages in Redis", sum(expired.values()))
