"""Delivery reports: every report and status-query answer, raw; when a message was polled.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 06:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "delivery_reports",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("message_id", BIG_ID, nullable=True),
        sa.Column("tracking_id", sa.String(length=128), nullable=True),
        sa.Column("vendor_status", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied", sa.Boolean(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_reports")),
    )
    with op.batch_alter_table("delivery_reports", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_delivery_reports_message_id"), ["message_id"], unique=False
        )
        batch_op.create_index(
            "ix_delivery_reports_outcome_received_at", ["outcome", "received_at"], unique=False
        )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("polled_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("polled_at")
    with op.batch_alter_table("delivery_reports", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_reports_outcome_received_at")
        batch_op.drop_index(batch_op.f("ix_delivery_reports_message_id"))
    op.drop_table("delivery_reports")
