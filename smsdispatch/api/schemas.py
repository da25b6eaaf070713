"""What the HTTP API takes and answers (its OpenAPI document is built from these)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import Path
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

# Ids are 64-bit integer columns: an id outside 1..2**63-1 names no row, and
# the database driver cannot even send it (SQLite raises OverflowError), so
# such an id in a path is a 422 rather than a server error.
MAX_ID = 2**63 - 1
RowId = Annotated[int, Path(ge=1, le=MAX_ID)]

# A model whose valid values depend on the catalog and the settings (which
# vendors, their senders and text lengths) carries this mark; the OpenAPI
# document holds those rules in its place (api/catalog_rules.py).
RULES_KEY = "x-rules"


def _text_only(value: object) -> object:
    """JSON writes a time as an ISO 8601 string; pydantic would also take a
    number, or a string of one, as Unix seconds: the document offers neither."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and not _is_number(value):
        return value
    raise ValueError("must be an ISO 8601 date-time")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _not_bool(value: object) -> object:
    """JSON's `true` and `false` are not numbers (pydantic would read them as 1 and 0)."""
    if isinstance(value, bool):
        raise ValueError("must be a number, not true or false")
    return value


# Values are taken only in the JSON type the document gives: `false` is not
# a weight of 0, nor 0 a time. (A whole number written 1.0 is an integer to
# JSON Schema, and to pydantic's lax mode too.)
Timestamp = Annotated[datetime, BeforeValidator(_text_only)]
NOT_BOOL = BeforeValidator(_not_bool)


def catalog_rules(name: str) -> ConfigDict:
    """A model's configuration: extra fields refused, the catalog's rules named."""
    return ConfigDict(extra="forbid", json_schema_extra={RULES_KEY: name})


# A recipient: a JSON Schema `format` of our own (a pattern cannot say "a
# number valid for its country"), in the rules of a message sent on its own
# (api/catalog_rules.py); tests/contract_hooks.py tells schemathesis how to
# write one.
PHONE_FORMAT = "phone"
PHONE_DESCRIPTION = (
    "A phone number valid for its country (libphonenumber's metadata), in E.164 "
    "(+ and the country code, e.g. +27821230001) or international with 00"
)


# PostgreSQL stores no NUL in text: a field that holds one is refused (422)
# rather than failing the request in the database.
NO_NUL = r"^[^\x00]*$"


# A status callback: a format of our own too (whether a host resolves to a
# public address is no pattern's to say); tests/contract_hooks.py writes them.
URL_FORMAT = "callback-url"
CALLBACK_DOC = (
    "An http(s) URL to POST each status change to, signed (Smsdispatch-Signature); "
    "left out: the API key's default, if it has one. Private, loopback and "
    "link-local addresses are refused."
)


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: Annotated[str, Field(max_length=32, description=PHONE_DESCRIPTION)]
    text: Annotated[str, Field(max_length=2000, pattern=NO_NUL)]
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
        Field(
            max_length=32,
            pattern=NO_NUL,
            description="The vendor's sender; routed messages take the route's",
        ),
    ] = None
    client_reference: Annotated[str | None, Field(max_length=128, pattern=NO_NUL)] = None
    idempotency_key: Annotated[str | None, Field(max_length=128, pattern=NO_NUL)] = None
    priority: Annotated[Literal[0, 1], NOT_BOOL, Field(description="0 bulk, 1 urgent")] = 0
    status_callback: Annotated[
        str | None,
        Field(max_length=2048, description=CALLBACK_DOC, json_schema_extra={"format": URL_FORMAT}),
    ] = None


class OneMessageIn(MessageIn):
    """A message sent on its own: its schema holds the catalog's rules, and a
    message that breaks one is refused (422). In a batch each message is
    checked on its own and reported by index (`BatchOut.rejected`)."""

    model_config = catalog_rules("message")


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    messages: Annotated[
        list[MessageIn],
        Field(
            min_length=1,
            description="Each is checked on its own against the rules of POST /v1/messages: "
            "the valid ones are stored, the others reported in `rejected` by index",
        ),
    ]


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
    model_config = catalog_rules("campaign")

    name: Annotated[str, Field(min_length=1, max_length=200, pattern=NO_NUL)]
    provider: Annotated[
        str | None,
        Field(
            max_length=32,
            description="A vendor of the catalog; left out or 'auto': each recipient's "
            "message is routed by the catalog's routes",
        ),
    ] = None
    template: Annotated[
        str,
        Field(
            min_length=1, max_length=2000, pattern=NO_NUL, description="Text with {placeholders}"
        ),
    ]
    sender: Annotated[
        str | None,
        Field(
            max_length=32,
            pattern=NO_NUL,
            description="sender or pool:<name>; a routed campaign takes its routes'",
        ),
    ] = None
    start_at: Timestamp | None = Field(None, description="ISO 8601 with an offset")
    end_at: Timestamp | None = Field(
        None, description="unsent messages expire then; after start_at"
    )
    timezone: Annotated[str, Field(max_length=64)] = "UTC"
    default_region: Annotated[
        str | None, Field(min_length=2, max_length=2, description="for local numbers, e.g. US")
    ] = None
    status_callback: Annotated[
        str | None,
        Field(
            max_length=2048,
            description=f"For each message: {CALLBACK_DOC}",
            json_schema_extra={"format": URL_FORMAT},
        ),
    ] = None


class ScheduleIn(BaseModel):
    model_config = catalog_rules("schedule")

    start_at: Timestamp | None = None
    end_at: Timestamp | None = None
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
    seconds: Annotated[float, Field(ge=1, le=366 * 86400), NOT_BOOL] | None = Field(
        None, description="null: until resumed"
    )


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

    weight: Annotated[int, Field(ge=0, le=100), NOT_BOOL]
    seconds: Annotated[float, Field(ge=1, le=7 * 24 * 3600), NOT_BOOL] = 3600.0
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
