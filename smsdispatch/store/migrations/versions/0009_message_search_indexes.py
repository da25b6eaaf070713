"""Indexes for searching messages (GET /v1/messages): by the caller's
reference and by when they were submitted.

Both columns are written once, with the row; the other filters (status,
vendor, campaign) ride on the id order of the primary key or on the
campaign's own index.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 21:50:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ix_messages_client_reference": ["client_reference"],
    "ix_messages_created_at": ["created_at"],
}


def upgrade() -> None:
    # CONCURRENTLY on PostgreSQL: the table may be large, and messages must
    # keep coming in while the indexes are built (not in a transaction).
    with op.get_context().autocommit_block():
        for name, columns in INDEXES.items():
            op.create_index(name, "messages", columns, postgresql_concurrently=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        for name in INDEXES:
            op.drop_index(name, table_name="messages", postgresql_concurrently=True)
