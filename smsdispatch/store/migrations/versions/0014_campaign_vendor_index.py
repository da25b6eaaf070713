"""A campaign's held messages by vendor: the index releases walk.

A routed campaign is released per vendor, at each vendor's pace
(campaigns/dispatcher.py); with only (campaign_id, status, id), a release
for a vendor that holds few or none of the campaign's rows walked every held
row of the campaign, once a second. (campaign_id, status, provider, id)
serves both that and a named campaign's release (all its rows at one
vendor), and still serves counting a campaign's rows by status, so it
replaces the old one rather than adding a second index to every write.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 01:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = ("ix_messages_campaign_id_status_id", ["campaign_id", "status", "id"])
NEW = ("ix_messages_campaign_id_status_provider_id", ["campaign_id", "status", "provider", "id"])


def upgrade() -> None:
    # CONCURRENTLY on PostgreSQL: messages keep coming in while it is built.
    with op.get_context().autocommit_block():
        op.create_index(NEW[0], "messages", NEW[1], postgresql_concurrently=True)
        op.drop_index(OLD[0], table_name="messages", postgresql_concurrently=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index(OLD[0], "messages", OLD[1], postgresql_concurrently=True)
        op.drop_index(NEW[0], table_name="messages", postgresql_concurrently=True)
