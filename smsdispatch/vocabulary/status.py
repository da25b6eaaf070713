"""The normalized message status and which statuses are final."""

from __future__ import annotations

from enum import StrEnum


class MessageStatus(StrEnum):
    HELD = "held"  # a campaign's message, stored; its campaign's dispatcher releases it
    QUEUED = "queued"  # stored; waiting for a worker (next_attempt_at says from when)
    SENDING = "sending"  # claimed by a worker that is calling the vendor
    ACCEPTED = "accepted"  # the vendor took it; tracking_id recorded; awaiting a report
    UNKNOWN = "unknown"  # the call may or may not have gone out: reconciliation decides
    DELIVERED = "delivered"  # final: the handset got it
    UNDELIVERED = "undelivered"  # final: the network could not deliver it
    EXPIRED = "expired"  # final: the network gave up in time
    FAILED = "failed"  # final: permanent vendor error, invalid row, or retries exhausted
    CANCELLED = "cancelled"  # final: its campaign was cancelled before it was sent


# The send pipeline is done with a message in these; delivery reports may
# still move ACCEPTED and UNKNOWN forward.
SETTLED = frozenset(
    {
        MessageStatus.ACCEPTED,
        MessageStatus.UNKNOWN,
        MessageStatus.DELIVERED,
        MessageStatus.UNDELIVERED,
        MessageStatus.EXPIRED,
        MessageStatus.FAILED,
        MessageStatus.CANCELLED,
    }
)
# A campaign's messages not sent yet: held for release, on the broker, or
# being sent right now.
UNSENT = frozenset({MessageStatus.HELD, MessageStatus.QUEUED, MessageStatus.SENDING})
FINAL = frozenset(
    {
        MessageStatus.DELIVERED,
        MessageStatus.UNDELIVERED,
        MessageStatus.EXPIRED,
        MessageStatus.FAILED,
        MessageStatus.CANCELLED,
    }
)


class CampaignStatus(StrEnum):
    DRAFT = "draft"  # being built: recipients may be imported
    SCHEDULED = "scheduled"  # waiting for its start time; the dispatcher starts it
    RUNNING = "running"  # the dispatcher releases its messages as the vendor can take them
    PAUSED = "paused"  # nothing released; released but unsent messages were taken back
    COMPLETED = "completed"  # every message was sent, failed, or expired at the end time
    CANCELLED = "cancelled"  # stopped for good; unsent messages are `cancelled`


# Which operator action may move a campaign from where to where.
CAMPAIGN_TRANSITIONS: dict[str, tuple[frozenset[CampaignStatus], CampaignStatus]] = {
    "schedule": (frozenset({CampaignStatus.DRAFT}), CampaignStatus.SCHEDULED),
    "start": (frozenset({CampaignStatus.DRAFT, CampaignStatus.SCHEDULED}), CampaignStatus.RUNNING),
    "pause": (frozenset({CampaignStatus.SCHEDULED, CampaignStatus.RUNNING}), CampaignStatus.PAUSED),
    "resume": (frozenset({CampaignStatus.PAUSED}), CampaignStatus.RUNNING),
    "cancel": (
        frozenset(
            {
                CampaignStatus.DRAFT,
                CampaignStatus.SCHEDULED,
                CampaignStatus.RUNNING,
                CampaignStatus.PAUSED,
            }
        ),
        CampaignStatus.CANCELLED,
    ),
}
