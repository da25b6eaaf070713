"""A delivery report, normalized: what every vendor's report is read into.

The vendor modules read their reports into `DeliveryReport` (providers/),
the store applies it forward-only (store/reports.py), the webhook
(api/reports.py) and reconciliation (reports/reconcile.py) hand it on.

    MessageStatus a report may carry
    ├── ACCEPTED     still in flight (queued at network, sent, en route): the
    │                vendor's word is kept in vendor_status, the status is not final
    ├── DELIVERED    final
    ├── UNDELIVERED  final: the network could not deliver it
    ├── EXPIRED      final: the network gave up in time
    └── FAILED       final: rejected, blocked, deleted, failed at network
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import parse_qsl

from smsdispatch.vocabulary.errors import PeerProtocolError
from smsdispatch.vocabulary.status import MessageStatus

# Report vocabularies map onto these only: a report never says "queued" or
# "sending" (those are ours) or "unknown" (an unknown word is refused instead).
REPORTABLE = frozenset(
    {
        MessageStatus.ACCEPTED,
        MessageStatus.DELIVERED,
        MessageStatus.UNDELIVERED,
        MessageStatus.EXPIRED,
        MessageStatus.FAILED,
    }
)

# The widths of messages.tracking_id and messages.error_code.
MAX_ID_CHARS = 128
MAX_CODE_CHARS = 64


class MalformedReport(PeerProtocolError, ValueError):
    """The request is not a report in the vendor's documented (or chosen) form."""


@dataclass(frozen=True, slots=True)
class IncomingReport:
    """One webhook request, as the vendor sent it: nothing is read into it yet."""

    method: str
    query: Mapping[str, str]
    body: bytes
    content_type: str = ""

    def form(self) -> dict[str, str]:
        """The body as an urlencoded form (last value wins), or MalformedReport."""
        try:
            return dict(parse_qsl(self.body.decode(), keep_blank_values=True, strict_parsing=False))
        except (UnicodeDecodeError, ValueError) as exc:
            raise MalformedReport("body is not an urlencoded form") from exc

    def fields(self) -> dict[str, str]:
        """Query parameters and form fields together (the form wins): for vendors
        whose document does not say whether the report is a GET or a POST."""
        values = dict(self.query)
        if self.body:
            values.update(self.form())
        return values

    @property
    def raw(self) -> str:
        """What is stored: the query and the body, as text (NUL, which
        PostgreSQL text cannot hold, replaced like undecodable bytes)."""
        query = "&".join(f"{k}={v}" for k, v in self.query.items())
        body = self.body.decode(errors="replace")
        raw = f"{query}\n{body}" if query else body
        return raw.replace("\x00", "\N{REPLACEMENT CHARACTER}")


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """One report, normalized; `raw` keeps everything the vendor said."""

    status: MessageStatus
    vendor_status: str  # the vendor's own word or code, as sent
    tracking_id: str | None = None  # the vendor's id for the message
    reference: str | None = None  # ours, where the vendor echoes it (see `our_reference`)
    error_code: str | None = None
    error_reason: str | None = None
    raw: str = field(default="", repr=False)
    # When the vendor says the status came about (an aware datetime), where the
    # report or status query carries it: a polled message's delivery time is
    # this, not the moment we asked.
    vendor_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.status not in REPORTABLE:
            raise ValueError(f"a report cannot carry status {self.status}")
        if self.tracking_id is None and self.reference is None:
            raise MalformedReport("the report names no message")
        # Longer than any id we store (messages.tracking_id is 128): not one of ours.
        if self.tracking_id is not None and len(self.tracking_id) > MAX_ID_CHARS:
            raise MalformedReport("the report's id is longer than any vendor id")
        if self.error_code is not None and len(self.error_code) > MAX_CODE_CHARS:
            raise MalformedReport("the report's error code is longer than any vendor code")
        # No vendor sends NUL, and PostgreSQL cannot compare or store it.
        said = (self.vendor_status, self.tracking_id, self.error_code, self.error_reason)
        if any(value is not None and "\x00" in value for value in said):
            raise MalformedReport("the report holds a NUL character")

    @property
    def final(self) -> bool:
        return self.status is not MessageStatus.ACCEPTED
