"""Keep the vendor's own time of a report: a polled message's time to delivery.

`final_at` is when we learned a message's final status; for a vendor that is
polled, that is up to a polling period after the vendor delivered it. Where
a report or status query says when the status came about (Messangi's
callback `date`, Restcomm's `date_updated`), it is kept: on the report
(`delivery_reports.vendor_at`, so a report kept for a send not yet recorded
keeps it too) and on the message it made final (`messages.vendor_final_at`).
Both nullable, no default: adding them rewrites no row.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 22:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("vendor_final_at", sa.DateTime(timezone=True)))
    op.add_column("delivery_reports", sa.Column("vendor_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("delivery_reports") as batch:
        batch.drop_column("vendor_at")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("vendor_final_at")
