"""The Alembic migrations build exactly the tables the models describe."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from smsdispatch.store.migrate import downgrade, upgrade
from smsdispatch.store.models import Base


def test_the_migrated_database_matches_the_models(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    finally:
        engine.dispose()


def test_every_migration_downgrades_and_upgrades_again(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    downgrade(url, "base")
    engine = create_engine(url)
    try:
        assert inspect(engine).get_table_names() == ["alembic_version"]
        upgrade(url)
        assert set(inspect(engine).get_table_names()) >= {
            "messages",
            "send_attempts",
            "campaigns",
            "opt_outs",
            "delivery_reports",
        }
    finally:
        engine.dispose()


def test_campaigns_may_name_no_vendor_after_0013_and_downgrading_refuses_to_lose_them(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    engine = create_engine(url)
    try:
        columns = {c["name"]: c for c in inspect(engine).get_columns("campaigns")}
        assert columns["provider"]["nullable"]
        assert columns["sender"]["nullable"]
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO campaigns (name, template, status, timezone, imported, "
                    "rejected, counts, created_at, updated_at) VALUES ('auto', 'hi', 'draft', "
                    "'UTC', 0, 0, '{}', '2026-12-02 00:00:00', '2026-12-02 00:00:00')"
                )
            )
    finally:
        engine.dispose()
    with pytest.raises(RuntimeError, match="routed campaigns"):
        downgrade(url, "0011")
