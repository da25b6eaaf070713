"""Routed campaigns: a campaign may name no vendor (NULL provider and sender).

A campaign created with `provider` left out or "auto" routes each
recipient's message by the catalog's routes (campaigns/routing.py): its
messages carry their own vendor, sender and route, and the campaign row has
none of its own. Named-provider campaigns keep both columns set, as before.
Dropping NOT NULL rewrites no row (SQLite: the batch copy keeps the rows).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 00:50:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.alter_column("provider", existing_type=sa.String(32), nullable=True)
        batch_op.alter_column("sender", existing_type=sa.String(32), nullable=True)


def downgrade() -> None:
    # A routed campaign has no vendor of its own: it cannot go back to a
    # schema that requires one. Refuse rather than invent one.
    bind = op.get_bind()
    routed = bind.execute(sa.text("SELECT count(*) FROM campaigns WHERE provider IS NULL"))
    if routed.scalar_one():
        raise RuntimeError(
            "routed campaigns (provider NULL) exist: delete them before downgrading below 0013"
        )
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.alter_column("sender", existing_type=sa.String(32), nullable=False)
        batch_op.alter_column("provider", existing_type=sa.String(32), nullable=False)
