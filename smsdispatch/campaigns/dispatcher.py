"""Releasing campaign messages at the pace the vendor can take them.

Runs from beat every `dispatch_interval_seconds`. Each run:

1. starts scheduled campaigns whose start time has come (by the injected
   clock, so tests fake time);
2. ends running or paused campaigns whose end time has passed: what is
   still unsent is `expired`;
3. tops up each vendor's backlog: released-but-unsent messages (status
   `queued`) are kept near the vendor's rate times `campaign_backlog_seconds`,
   split fairly between the vendor's running campaigns. So Redis never holds
   more than a few seconds of sending, whatever the size of the campaign
   (invariant 4), and a pause has only that much to take back;
4. takes back anything still queued for a paused campaign (a release that
   raced the pause), and completes campaigns with nothing left to send;
5. refreshes the stored counters of active campaigns every
   `campaign_counts_interval_seconds`.

Releasing is `held -> queued` in id order, conditioned on the campaign still
running in the same statement, and marked enqueued (store/campaign_messages.py);
then the ids are published. If the dispatcher dies in between, the sweeper
publishes them after `requeue_after_seconds`, as for any message the broker
lost (marking them only after publishing would let the sweeper publish them a
second time meanwhile).

The backlog counts released messages that are `queued` or `sending`: a
task a worker has reserved stays in Redis until it is acknowledged.

A routed campaign (no vendor of its own) has its messages routed when they
were imported (campaigns/routing.py); it takes part in the top-up of every
vendor its routes name, releasing that vendor's messages at that vendor's
pace, so a pause or quiet hours of one vendor hold only its share.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.orm import Session

from smsdispatch.config.catalog import ProviderEntry
from smsdispatch.limits import pauses
from smsdispatch.limits.rates import backlog, campaign_rate, vendor_rate
from smsdispatch.queueing.periodic import exclusive
from smsdispatch.queueing.publish import publish
from smsdispatch.queueing.services import Services
from smsdispatch.store.campaign_messages import finish_unsent, release, take_back
from smsdispatch.store.campaigns import complete, complete_if_done, refresh_counts, start_due
from smsdispatch.store.models import campaigns, messages
from smsdispatch.vocabulary import keys
from smsdispatch.vocabulary.status import CampaignStatus, MessageStatus

log = logging.getLogger(__name__)

ACTIVE = (CampaignStatus.RUNNING, CampaignStatus.PAUSED)


@dataclass
class DispatchResult:
    started: list[int] = field(default_factory=list)
    ended: list[int] = field(default_factory=list)
    completed: list[int] = field(default_factory=list)
    released: dict[int, int] = field(default_factory=dict)  # campaign id -> messages


# A run takes well under a second; a dispatcher that died holding the lock
# gives it up after this.
LOCK_SECONDS = 30.0


def dispatch_campaigns(rt: Services) -> DispatchResult:
    """One dispatcher run; skipped while another holds the lock.

    Two runs at once (beat's tasks taken by two maintenance workers) would
    each see the same room in the backlog and fill it twice over.
    """
    with exclusive(rt.redis, keys.DISPATCH_LOCK, LOCK_SECONDS) as held:
        if not held:
            log.debug("dispatch: another run is in progress; skipped")
            return DispatchResult()
        return _dispatch(rt)


def _dispatch(rt: Services) -> DispatchResult:
    now = rt.clock()
    result = DispatchResult()
    with rt.db.session() as session, session.begin():
        result.started = start_due(session, now)
    with rt.db.session() as session, session.begin():
        result.ended = _end_overdue(session, now)
    active = _active(rt)
    for campaign in active:
        if campaign["status"] == CampaignStatus.PAUSED:
            with rt.db.session() as session, session.begin():
                take_back(session, campaign["id"], now)
    running = [c for c in active if c["status"] == CampaignStatus.RUNNING]
    by_provider: dict[str, list[RowMapping]] = defaultdict(list)
    routed_vendors = sorted({v.vendor for r in rt.catalog.routes.values() for v in r.vendors})
    for campaign in running:
        for provider in [campaign["provider"]] if campaign["provider"] else routed_vendors:
            by_provider[provider].append(campaign)
    for provider, group in by_provider.items():
        for campaign_id, count in _top_up(rt, provider, group, now).items():
            # A routed campaign is topped up at each of its vendors.
            result.released[campaign_id] = result.released.get(campaign_id, 0) + count
    with rt.db.session() as session, session.begin():
        result.completed = _complete_finished(session, [c["id"] for c in running], now)
    _refresh(rt, active, result, now)
    if result.started or result.ended or result.completed or any(result.released.values()):
        log.info(
            "dispatch: started=%s ended=%s completed=%s released=%s",
            result.started,
            result.ended,
            result.completed,
            {k: v for k, v in result.released.items() if v},
        )
    return result


def _end_overdue(session: Session, now: datetime) -> list[int]:
    """Campaigns past their end time: unsent messages expire, the campaign completes."""
    c = campaigns.c
    overdue = list(
        session.scalars(
            select(c.id).where(c.status.in_([*ACTIVE, CampaignStatus.SCHEDULED]), c.end_at <= now)
        )
    )
    for campaign_id in overdue:
        expired = finish_unsent(
            session,
            campaign_id,
            now,
            MessageStatus.EXPIRED,
            "campaign_ended",
            "its campaign's end time passed before it was sent",
        )
        complete(session, campaign_id, now)
        refresh_counts(session, campaign_id, now)
        log.info(
            "campaign %d ended at its end time: %d unsent messages expired", campaign_id, expired
        )
    return overdue


def _active(rt: Services) -> list[RowMapping]:
    c = campaigns.c
    with rt.db.session() as session:
        return list(
            session.execute(
                select(c.id, c.provider, c.sender, c.status, c.updated_at)
                .where(c.status.in_(ACTIVE))
                .order_by(c.id)
            ).mappings()
        )


def _top_up(rt: Services, provider: str, group: list[RowMapping], now: datetime) -> dict[int, int]:
    """Release each campaign's share of the vendor's backlog; publish the ids."""
    entry = rt.catalog.get(provider)
    if _vendor_holding(rt, entry, now):
        # A routed campaign's share is released all the same: its workers
        # move those messages to another vendor of their route
        # (sending/failover.py) instead of leaving them to wait here.
        group = [c for c in group if c["provider"] is None]
        if not group:
            return {}
    horizon = rt.settings.campaign_backlog_seconds
    released: dict[int, int] = {}
    with rt.db.session() as session:
        waiting = _released_counts(session, [c["id"] for c in group], provider)
    room = backlog(vendor_rate(entry), horizon) - sum(waiting.values())
    # Equal shares of the vendor's room; the first campaigns take the remainder.
    shares = [room // len(group) + (1 if i < room % len(group) else 0) for i in range(len(group))]
    for campaign, share in zip(group, shares, strict=True):
        own = backlog(_own_rate(rt, entry, campaign["sender"]), horizon)
        want = min(share, own - waiting.get(campaign["id"], 0))
        if want <= 0:
            continue
        # By vendor, for a named campaign too (all its rows are at its vendor):
        # the release walks the index on (campaign, status, vendor, id).
        ids = _release(rt, campaign["id"], want, now, provider)
        released[campaign["id"]] = len(ids)
        if ids:
            publish(rt.celery, rt.catalog, [(i, provider, 0) for i in ids])
    return released


def _own_rate(rt: Services, entry: ProviderEntry, sender: str | None) -> float:
    """The campaign's pace on this vendor: its sender's, or for a routed campaign
    (sender None) its routes' senders on this vendor together, at most the vendor's."""
    if sender is not None:
        return campaign_rate(entry, sender)
    senders = {
        choice.sender
        for route in rt.catalog.routes.values()
        if (choice := route.vendor(entry.name)) is not None
    }
    if not senders:
        return vendor_rate(entry)
    return min(vendor_rate(entry), sum(campaign_rate(entry, s) for s in senders))


def _vendor_holding(rt: Services, entry: ProviderEntry, now: datetime) -> bool:
    """Release nothing into a pause or declared quiet hours: it would only wait."""
    if pauses.current_pause(rt.redis, entry.name, now) is not None:
        return True
    quiet = entry.quiet_hours
    return bool(quiet and quiet.hold_before_sending and quiet.next_open(now) is not None)


RELEASED = (MessageStatus.QUEUED, MessageStatus.SENDING)


def _released_counts(session: Session, campaign_ids: list[int], provider: str) -> dict[int, int]:
    """Released, unsent messages per campaign, of this vendor (a routed campaign
    has some at each vendor; a named one has all at its own)."""
    m = messages.c
    rows = session.execute(
        select(m.campaign_id, func.count())
        .where(m.campaign_id.in_(campaign_ids), m.status.in_(RELEASED), m.provider == provider)
        .group_by(m.campaign_id)
    )
    return {int(cid): int(n) for cid, n in rows}


def _release(rt: Services, campaign_id: int, limit: int, now: datetime, provider: str) -> list[int]:
    with rt.db.session() as session, session.begin():
        return release(session, campaign_id, limit, now, provider)


def _complete_finished(session: Session, campaign_ids: list[int], now: datetime) -> list[int]:
    done: list[int] = []
    for campaign_id in campaign_ids:
        if complete_if_done(session, campaign_id, now):
            refresh_counts(session, campaign_id, now)
            done.append(campaign_id)
            log.info("campaign %d completed", campaign_id)
    return done


def _refresh(rt: Services, active: list[RowMapping], result: DispatchResult, now: datetime) -> None:
    """Recount active campaigns, and finished ones while delivery reports still
    move their messages (for `campaign_counts_after_seconds`)."""
    interval = timedelta(seconds=rt.settings.campaign_counts_interval_seconds)
    finished = set(result.completed) | set(result.ended)
    c = campaigns.c
    with rt.db.session() as session:
        recent = session.execute(
            select(c.id, c.updated_at).where(
                c.status.in_([CampaignStatus.COMPLETED, CampaignStatus.CANCELLED]),
                c.finished_at >= now - timedelta(seconds=rt.settings.campaign_counts_after_seconds),
            )
        ).mappings()
        candidates = [*active, *recent]
    stale = [
        row["id"]
        for row in candidates
        if row["id"] not in finished
        and (row["updated_at"] is None or now - row["updated_at"] >= interval)
    ]
    for campaign_id in stale:
        with rt.db.session() as session, session.begin():
            refresh_counts(session, campaign_id, now)
