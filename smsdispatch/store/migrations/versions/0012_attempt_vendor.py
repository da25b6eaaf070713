"""The vendor and sender of each send attempt.

A routed message may fail over to another vendor of its route
(sending/failover.py): one row, one id, several vendors tried. The message's
row says which vendor finally carried it; each attempt says where it went.
Nullable, no default: attempts written before this migration keep NULL
(their message's provider is the one they went to, as no message moved).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 01:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("send_attempts", sa.Column("provider", sa.String(32)))
    op.add_column("send_attempts", sa.Column("sender", sa.String(32)))


def downgrade() -> None:
    with op.batch_alter_table("send_attempts", schema=None) as batch_op:
        batch_op.drop_column("sender")
        batch_op.drop_column("provider")
