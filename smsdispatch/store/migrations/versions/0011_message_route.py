"""The route of a message that named no vendor: the vendors it may move between.

NULL for a message that named its vendor (it goes there and only there);
otherwise the catalog route it was routed by, so a worker knows which other
vendors may carry it. Nullable, no default: adding it rewrites no row.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 21:50:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("route", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("route")
