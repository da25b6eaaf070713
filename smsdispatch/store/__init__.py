"""The results table: the source of truth for every message (SQLAlchemy 2 + Alembic)."""
