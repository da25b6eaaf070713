"""Tables. `messages` is the outbox and the results table in one.

Hot paths (claim, persist, sweep) use Core statements on these tables; the
ORM classes are for reading and for the producer's inserts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator

from smsdispatch.vocabulary.status import CampaignStatus, MessageStatus

# BIGINT in PostgreSQL, INTEGER (the rowid alias) in SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC and read back timezone-aware on every backend.

    SQLite keeps no offset; without this a value read back would be naive and
    compare wrongly with `datetime.now(UTC)`.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class RandomReference(FunctionElement[str]):
    """A new message reference drawn by the database: 32 lowercase hex digits.

    The column's server default, so every insert path gets one without
    knowing about it: the producer, the campaign importer's COPY and
    executemany, and rows another application writes directly. PostgreSQL
    draws a version-4 UUID (122 random bits), SQLite 128 random bits.
    """

    type = String(32)
    name = "random_reference"
    inherit_cache = True


@compiles(RandomReference, "postgresql")
def _random_reference_postgresql(element: RandomReference, compiler: SQLCompiler, **kw: Any) -> str:
    return "replace(CAST(gen_random_uuid() AS TEXT), '-', '')"


@compiles(RandomReference, "sqlite")
def _random_reference_sqlite(element: RandomReference, compiler: SQLCompiler, **kw: Any) -> str:
    return "lower(hex(randomblob(16)))"


@compiles(RandomReference)
def _random_reference_other(element: RandomReference, compiler: SQLCompiler, **kw: Any) -> str:
    raise CompileError(f"no random message reference for {compiler.dialect.name}")


NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(32))
    sender: Mapped[str] = mapped_column(String(32))
    # The catalog route of a message that named no vendor (config/routes.py);
    # None: it named its vendor and goes there only.
    route: Mapped[str | None] = mapped_column(String(64))
    recipient: Mapped[str] = mapped_column(String(20))  # E.164 with '+'
    text: Mapped[str] = mapped_column(Text)
    encoding: Mapped[str] = mapped_column(String(8))
    segments: Mapped[int] = mapped_column(SmallInteger)
    status: Mapped[str] = mapped_column(String(16), default=MessageStatus.QUEUED.value)
    # 0 bulk, 1 urgent (one-time passwords): urgent ids go on the vendor's
    # priority queue, served by workers of their own.
    priority: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    # The campaign it belongs to, if any, and the values of the campaign
    # template's placeholders in template order (Messangi's batch endpoint
    # sends the template once and these per recipient).
    campaign_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("campaigns.id", ondelete="CASCADE")
    )
    params: Mapped[list[str] | None] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The claim of the worker holding a `sending` row: drawn anew at every
    # claim, never given back (`attempts` is, by a hold), so a result can be
    # written only by, and to, the send it belongs to.
    claim_token: Mapped[str | None] = mapped_column(String(16))
    # An earlier send may have reached the vendor unanswered (a timeout, a
    # worker killed): then, and only then, Cue's -7 can mean "already ours".
    reference_in_doubt: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Our reference at the vendor (Cue client_reference, Messangi externalId,
    # SMSBuddy refid/custom, Cue's report URL) and in its reports: random, so
    # no other database, past or future, sends the same one (DESIGN
    # invariant 3); the row id is not, a second installation counts 1, 2, 3 too.
    reference: Mapped[str] = mapped_column(String(32), server_default=RandomReference())
    # The producer's own reference, returned in reports; and its idempotency key:
    # the same key again returns the same message instead of sending anew.
    client_reference: Mapped[str | None] = mapped_column(String(128))
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    # What the vendor said: its id for the message, its status word, its code.
    tracking_id: Mapped[str | None] = mapped_column(String(128))
    vendor_status: Mapped[str | None] = mapped_column(String(64))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_reason: Mapped[str | None] = mapped_column(Text)
    # Outbox bookkeeping: when it may next be sent, when its id was last put
    # on the broker, when a worker claimed it.
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    final_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When the vendor says the final status came about, where its report or
    # status query says (final_at is when we learned it): time to delivery.
    vendor_final_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # When reconciliation last asked the vendor for this message's status.
    polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Where to tell the client application of its status changes, and the
    # API key whose secret signs them (NULL: the CALLBACK_SECRET setting).
    # A trigger (migration 0015) writes a `status_callbacks` row for each.
    status_callback: Mapped[str | None] = mapped_column(String(2048))
    callback_key_id: Mapped[int | None] = mapped_column(BigId)

    __table_args__ = (
        # Delivery reports and status polls look messages up by the vendor's id.
        Index("ix_messages_provider_tracking_id", "provider", "tracking_id"),
        # ... and by ours, which no two messages share.
        Index("ix_messages_reference", "reference", unique=True),
        # The sweeper scans what is due or stuck.
        Index("ix_messages_status_next_attempt_at", "status", "next_attempt_at"),
        # The dispatcher releases a campaign's held rows of one vendor in id
        # order (migration 0014) and counts its rows by status.
        Index(
            "ix_messages_campaign_id_status_provider_id", "campaign_id", "status", "provider", "id"
        ),
        # GET /v1/messages finds messages by the caller's reference and by
        # when they were submitted (migration 0009); neither column changes
        # once written.
        Index("ix_messages_client_reference", "client_reference"),
        Index("ix_messages_created_at", "created_at"),
    )


class Campaign(Base):
    """A template sent to a list of recipients, released at the vendor's pace."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    # Both NULL for a routed campaign: each message takes its route's vendor
    # and sender (campaigns/routing.py).
    provider: Mapped[str | None] = mapped_column(String(32))
    sender: Mapped[str | None] = mapped_column(String(32))  # a sender id or "pool:<name>"
    template: Mapped[str] = mapped_column(Text)
    # Local numbers in the recipient list are read in this region ("US").
    default_region: Mapped[str | None] = mapped_column(String(2))
    status: Mapped[str] = mapped_column(String(16), default=CampaignStatus.DRAFT.value)
    # When to start, and when to give up on what is still unsent. Stored in
    # UTC; `timezone` is the zone the operator wrote them in, for display.
    start_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    end_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # Import results and a snapshot of messages by status, refreshed by the
    # dispatcher (exact after completion; `campaign show` counts live).
    imported: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    counts: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Copied onto each of its messages (Message.status_callback).
    status_callback: Mapped[str | None] = mapped_column(String(2048))
    callback_key_id: Mapped[int | None] = mapped_column(BigId)

    __table_args__ = (Index("ix_campaigns_status_start_at", "status", "start_at"),)


class OptOut(Base):
    """A number that asked not to be sent to: every send path checks it."""

    __tablename__ = "opt_outs"

    recipient: Mapped[str] = mapped_column(String(20), primary_key=True)  # E.164
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SendAttempt(Base):
    """One row per vendor call: what was asked and what the vendor answered."""

    __tablename__ = "send_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    attempt: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))
    code: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    tracking_id: Mapped[str | None] = mapped_column(String(128))
    raw: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Where this call went: a routed message may fail over to another vendor
    # of its route (sending/failover.py). NULL before migration 0012.
    provider: Mapped[str | None] = mapped_column(String(32))
    sender: Mapped[str | None] = mapped_column(String(32))


class DeliveryReportRow(Base):
    """Every delivery report and status-query answer, raw, with what it did."""

    __tablename__ = "delivery_reports"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(16))  # "webhook" or "poll"
    message_id: Mapped[int | None] = mapped_column(BigId, index=True)  # ours, once matched
    tracking_id: Mapped[str | None] = mapped_column(String(128))
    vendor_status: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str | None] = mapped_column(String(16))  # mapped; None if unreadable
    raw: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    vendor_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # the vendor's own time
    applied: Mapped[bool] = mapped_column(Boolean)
    # applied, ignored (late or repeated), unmatched, malformed: smsdispatch.store.reports.Applied
    outcome: Mapped[str] = mapped_column(String(16))

    __table_args__ = (
        # Reconciliation re-applies recent reports that matched no message yet.
        Index("ix_delivery_reports_outcome_received_at", "outcome", "received_at"),
        # The send's own transaction applies the reports kept for it (migration 0007).
        Index(
            "ix_delivery_reports_kept",
            "tracking_id",
            postgresql_where=text("outcome = 'unmatched'"),
            sqlite_where=text("outcome = 'unmatched'"),
        ),
    )


class ApiKey(Base):
    """A key for the HTTP API, added and revoked at run time (`smsdispatch keys`).

    Only the key's SHA-256 is kept: the key is random (256 bits), so its hash
    is looked up as is, and a copy of the table lets nobody in. A name is
    unique among the keys not revoked, so a revoked key's name can be reused.
    """

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)  # hex SHA-256
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The status callback of its messages that name none, and the secret
    # their callbacks are signed with (shown once, at creation). The secret is
    # kept as is: signing needs it, a hash would not do.
    callback_url: Mapped[str | None] = mapped_column(String(2048))
    callback_secret: Mapped[str | None] = mapped_column(String(128))

    __table_args__ = (
        Index(
            "ix_api_keys_active_name",
            "name",
            unique=True,
            postgresql_where=text("revoked_at IS NULL"),
            sqlite_where=text("revoked_at IS NULL"),
        ),
    )


class StatusCallback(Base):
    """One status change to POST to a client application: the callbacks' outbox.

    Written by the trigger on `messages` (migration 0015) in the status
    change's own transaction; its id is the sequence number the receiver
    orders one message's callbacks by. `state`: pending, delivered, failed.
    """

    __tablename__ = "status_callbacks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    event: Mapped[str] = mapped_column(String(16))  # "status" or "vendor" (failover)
    status: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(32))
    tracking_id: Mapped[str | None] = mapped_column(String(128))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_reason: Mapped[str | None] = mapped_column(Text)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    url: Mapped[str] = mapped_column(String(2048))
    key_id: Mapped[int | None] = mapped_column(BigId)  # whose secret signs it
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    # When it is due; while a worker posts it, the end of that worker's lease.
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    claim_token: Mapped[str | None] = mapped_column(String(16))
    last_error: Mapped[str | None] = mapped_column(Text)
    response_status: Mapped[int | None] = mapped_column(Integer)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Retries go on for a period from the change, or from the last replay.
    replayed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_status_callbacks_state_next_attempt_at", "state", "next_attempt_at"),
    )


messages = cast(Table, Message.__table__)
status_callbacks = cast(Table, StatusCallback.__table__)
api_keys = cast(Table, ApiKey.__table__)
send_attempts = cast(Table, SendAttempt.__table__)
campaigns = cast(Table, Campaign.__table__)
opt_outs = cast(Table, OptOut.__table__)
delivery_reports = cast(Table, DeliveryReportRow.__table__)
