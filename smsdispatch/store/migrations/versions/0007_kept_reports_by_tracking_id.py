"""Find the reports kept for a send not yet recorded, by the vendor's id.

A report naming only the vendor's id can come before the worker records that
id. It is kept (`outcome = 'unmatched'`) and applied in the same transaction
that records the send (store/reports.py `apply_kept`), which looks it up by
tracking id: this partial index holds only the few reports still waiting.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 15:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WAITING = sa.text("outcome = 'unmatched'")


def upgrade() -> None:
    # CONCURRENTLY on PostgreSQL: the table may be large, and reports must
    # keep coming in while the index is built (it cannot run in a transaction).
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_delivery_reports_kept",
            "delivery_reports",
            ["tracking_id"],
            postgresql_where=WAITING,
            sqlite_where=WAITING,
            postgresql_concurrently=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index(
            "ix_delivery_reports_kept", table_name="delivery_reports", postgresql_concurrently=True
        )
