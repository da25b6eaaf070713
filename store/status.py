"""The normalized message status and which statuses are final."""

from __future__ import annotations

from enum import StrEnum


class MessageStatus(StrEnum):
    QUEUED = "queued"  # stored; waiting for a worker (next_attempt_at says from when)
    SENDING = "sending"  # claimed by a worker that is calling the vendor
    ACCEPTED = "accepted"  # the vendor took it; tracking_id recorded; awaiting a report
    UNKNOWN = "unknown"  # the call may or may not have gone out: reconciliation decides
    DELIVERED = "delivered"  # final: the handset got it
    UNDELIVERED = "undelivered"  # final: the network could not deliver it
    EXPIRED = "expired"  # final: the network gave up in time
    FAILED = "failed"  # final: permanent vendor error, invalid row, or retries exhausted


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
    }
)
FINAL = frozenset(
    {
        MessageStatus.DELIVERED,
        MessageStatus.UNDELIVERED,
        MessageStatus.EXPIRED,
        MessageStatus.FAILED,
    }
)
