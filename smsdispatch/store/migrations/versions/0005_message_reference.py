"""Message reference: a random vendor reference per message, unique across installations.

The reference sent to vendors was the row id, which a second database (staging,
a demo, a move to PostgreSQL) hands out again: Cue then rejected its messages
as duplicates (-7) and they were recorded accepted without being sent. New rows
get a random reference from the column's server default (store.models
`RandomReference`), whatever inserts them.

Existing rows are split by whether a vendor may already have them:

- A row never attempted (attempts = 0) has been sent under no reference: it
  gets a random one, like a new row.
- A row attempted at least once may be at a vendor under its old reference,
  the row id: it keeps that, as text (`str(id)`). A row queued again after an
  ambiguous answer must go to Cue under the reference Cue already holds, so
  that Cue's -7 still recognises the earlier send instead of a new reference
  sending it twice; and the reports for messages sent before the upgrade name
  the row id (Cue's report URL carries `message_id=<id>`, Messangi's
  externalId and SMSBuddy's custom echo it), which still match by
  `messages.reference` (providers.reports `our_reference` accepts such a
  legacy decimal reference). These references are only as unique as before:
  they exist only on rows that were already sent with them, and no new row
  gets one.

Decimal references and random ones cannot collide in the unique index: a
random reference is 32 hex digits, a row id at most 19 digits.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# 32 lowercase hex digits drawn by the database, per row (written out here, not
# imported from the models, so this migration keeps meaning what it meant).
DRAW = {
    "postgresql": "replace(CAST(gen_random_uuid() AS TEXT), '-', '')",
    "sqlite": "lower(hex(randomblob(16)))",
}


def upgrade() -> None:
    draw = DRAW[op.get_context().dialect.name]
    # Nullable first: SQLite cannot add a column whose default is an expression,
    # and existing rows need one reference each, not one shared default.
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reference", sa.String(length=32), nullable=True))
    op.execute("UPDATE messages SET reference = CAST(id AS TEXT) WHERE attempts > 0")
    op.execute(f"UPDATE messages SET reference = {draw} WHERE reference IS NULL")  # noqa: S608
    # On SQLite, batch mode rebuilds the table with the NOT NULL column and
    # its default; PostgreSQL alters it in place.
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.alter_column(
            "reference",
            existing_type=sa.String(length=32),
            nullable=False,
            server_default=sa.text(draw),
        )
        batch_op.create_index("ix_messages_reference", ["reference"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_reference")
        batch_op.drop_column("reference")
