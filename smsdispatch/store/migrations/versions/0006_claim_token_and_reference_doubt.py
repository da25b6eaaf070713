"""Claims that are never handed out twice, and whether a reference may have been used.

`claim_token`: the claim of the worker that holds a `sending` row. The attempt
count could not serve: a hold gives an attempt back, so a later send of the
same message had the same count, and an answer kept for the earlier send
(sending/journal.py) could have been written onto the later one.

`reference_in_doubt`: an earlier send of this message may have reached the
vendor without our hearing its answer (a timeout, a worker killed). Only then
may Cue's -7 "Duplicate Client Reference" mean our own earlier send was
accepted.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 11:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claim_token", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column("reference_in_doubt", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    # What was recorded before cannot tell a refused send from an unanswered
    # one: a message already tried and not yet settled may have reached the
    # vendor, so its reference is in doubt (Cue's -7 then counts as ours).
    op.execute(
        "UPDATE messages SET reference_in_doubt = TRUE "
        "WHERE attempts > 0 AND status IN ('queued', 'sending', 'unknown')"
    )


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("reference_in_doubt")
        batch_op.drop_column("claim_token")
