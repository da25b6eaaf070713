"""What the HTTP API takes and answers (its OpenAPI document is built from these)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field

# Ids are 64-bit integer columns: an id outside 1..2**63-1 names no row, and
# the database driver cannot even send it (SQLite raises OverflowError), so
# such an id in a path is a 422 rather than a server error.
MAX_ID = 2**63 - 1
RowId = Annotated[int, Path(ge=1, le=MAX_ID)]


CALLBACK_DOC = (
    "An http(s) URL to POST each status change to, signed (Smsdispatch-Signature); "
    "left out: the API key's default, if it has one. Private, loopback and "
    "link-local addresses are refused."
)


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: Annotated[str, Field(max_length=32, description="E.164, e.g. +27821230001")]
    text: Annotated[str, Field(max_length=2000)]
    provider: Annotated[
        str | None,
        Field(
            max_length=32,
            description="A vendor of the catalog; left out or 'auto': the catalog's "
            "routes choose one for the recipient",
        ),
    ] = None
    sender: Annotated[
        str | None,
        Field(max_length=32, description="The vendor's sender; routed messages take the route's"),
    ] = None
    client_reference: Annotated[str | None, Field(max_length=128)] = None
    idempotency_key: Annotated[str | None, Field(max_length=128)] = None
    priority: Literal[0, 1] = 0
    status_callback: Annotated[str | None, Field(max_length=2048, description=CALLBACK_DOC)] = None


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    messages: Annotated[list[MessageIn], Field(min_length=1)]


class Accepted(BaseModel):
    id: int


class Rejected(BaseModel):
    index: int
    field: str
    reason: str


class BatchOut(BaseModel):
    accepted: list[tuple[int, int]] = Field(description="(request index, message id) pairs")
    rejected: list[Rejected]


class MessageStatusOut(BaseModel):
    """A message's state; the recipient and the text are not echoed back."""

    id: int
    # Our reference for the message at the vendor (Cue client_reference,
    # Messangi externalId, SMSBuddy refid/custom), for looking it up there.
    reference: str
    # The vendor that has it now: for a routed message, the one that carried
    # it after any failover (each attempt's vendor is in send_attempts).
    provider: str
    route: str | None = Field(
        None, description="The route that chose its vendor; null when the message named it"
    )
    status: str
    attempts: int
    tracking_id: str | None
    vendor_status: str | None
    error_code: str | None
    error_reason: str | None
    client_reference: str | None
    created_at: datetime
    sent_at: datetime | None
    final_at: datetime | None


class CampaignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200)]
    provider: Annotated[
        str | None,
        Field(
            max_length=32,
            description="A vendor of the catalog; left out or 'auto': each recipient's "
            "message is routed by the catalog's routes",
        ),
    ] = None
    template: Annotated[
        str, Field(min_length=1, max_length=2000, description="Text with {placeholders}")
    ]
    sender: Annotated[
        str | None,
        Field(
            max_length=32, description="sender or pool:<name>; a routed campaign takes its routes'"
        ),
    ] = None
    start_at: datetime | None = Field(None, description="ISO 8601 with an offset")
    end_at: datetime | None = Field(None, description="unsent messages expire then")
    timezone: Annotated[str, Field(max_length=64)] = "UTC"
    default_region: Annotated[
        str | None, Field(min_length=2, max_length=2, description="for local numbers, e.g. US")
    ] = None
    status_callback: Annotated[
        str | None, Field(max_length=2048, description=f"For each message: {CALLBACK_DOC}")
    ] = None


class ScheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start_at: datetime | None = None
    end_at: datetime | None = None
    timezone: Annotated[str | None, Field(max_length=64)] = None


class CampaignOut(BaseModel):
    id: int
    name: str
    provider: str = Field(description="its vendor, or 'auto': routed per recipient")
    sender: str | None = Field(description="None for a routed campaign: its routes' senders")
    status_callback: str | None = Field(None, description="where its messages' changes go")
    status: str
    start_at: datetime | None
    end_at: datetime | None
    timezone: str
    imported: int
    rejected: int
    counts: dict[str, int] = Field(description="messages by status, counted now")
    by_vendor: dict[str, int] = Field(
        default_factory=dict, description="messages per vendor, counted now (one campaign)"
    )
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class RowRejection(BaseModel):
    line: int
    reason: str


class ImportOut(BaseModel):
    imported: int
    rejected: int
    duplicates: int
    opted_out: int
    rejections: list[RowRejection] = Field(description="the first 100, by line")


class PreviewSample(BaseModel):
    recipient: str = Field(description="masked")
    text: str
    encoding: str
    segments: int


class VendorShareOut(BaseModel):
    vendor: str
    messages: float = Field(description="expected (a weight share for a routed campaign)")
    segments: float
    cost: Decimal | None = Field(
        description="segments x the route vendor's price_per_segment; null: no price known"
    )
    unpriced_segments: float


class PreviewOut(BaseModel):
    messages: int
    segments: int = Field(description="total: the cost estimate, vendors bill per segment")
    by_encoding: dict[str, int]
    max_segments: int
    samples: list[PreviewSample]
    routed: bool = False
    vendors: list[VendorShareOut] = Field(
        default_factory=list, description="expected split and cost per vendor"
    )
    unroutable: int = Field(0, description="messages no vendor of their route can carry now")


class MessageFound(MessageStatusOut):
    """A message in a search; `to` and `text` only when asked for (`include`)."""

    campaign_id: int | None
    to: str | None = None
    text: str | None = None


class MessagePage(BaseModel):
    messages: list[MessageFound]
    next: str | None = Field(description="`after` for the next page; null on the last one")


class CancelOut(BaseModel):
    id: int
    status: str


class PauseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Field(min_length=1, max_length=500)] = "paused over the API"
    seconds: Annotated[
        float | None, Field(gt=0, le=366 * 86400, description="null: until resumed")
    ] = None


class PauseOut(BaseModel):
    reason: str
    by: str = Field(description='"automatic" for a pause a worker set on a vendor\'s answer')
    automatic: bool
    since: datetime | None
    until: datetime | None = Field(description="null: until resumed")


class VendorOut(BaseModel):
    vendor: str
    paused: bool
    pause: PauseOut | None


class ResumedOut(BaseModel):
    vendor: str
    lifted: PauseOut | None = Field(description="the pause that was in force, if any")
    released: int = Field(description="messages that waited for the pause, due now")


class PinIn(BaseModel):
    """Hold a vendor's weight on a route for a while; weight 0 drains it."""

    model_config = ConfigDict(extra="forbid")

    weight: Annotated[int, Field(ge=0, le=100)]
    seconds: Annotated[float, Field(gt=0, le=7 * 24 * 3600)] = 3600.0
    reason: Annotated[str, Field(min_length=1, max_length=200)] = "pinned over the API"


class RouteVendorOut(BaseModel):
    route: str
    destinations: str
    vendor: str
    sender: str
    weight: int
    resting: int
    pinned: bool
    breaker: str
    answers: int
    failure_share: float
    paused: bool
    # Over the catalog's delivery window (routing/delivery.py); None: too few
    # final reports to say.
    final_reports: int = 0
    delivered_share: float | None = None
    delivery_seconds: float | None = None
