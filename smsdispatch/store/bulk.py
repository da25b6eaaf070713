"""Inserting many rows by the fastest path each backend has.

A campaign import stores a million rows; SQLAlchemy's per-row parameter
processing would cost more than the database does. PostgreSQL takes the rows
through COPY; SQLite through the driver's `executemany` with values already
in the driver's form. Values common to every row are converted once.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import Table
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

T = TypeVar("T")

# Ids per `IN (...)` list: well under every backend's bound-parameter limit.
IN_LIST = 1000


def chunked(items: Sequence[T], size: int = IN_LIST) -> Iterator[Sequence[T]]:
    """`items` in slices of at most `size` (for IN lists and batched writes)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def insert_many(
    session: Session,
    table: Table,
    shared: Mapping[str, Any],
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    encoded: Collection[str] = (),
) -> None:
    """Insert `rows` (values for `columns`), each also given the `shared` values.

    Columns named in `encoded` hold values already in the driver's form
    (JSON text for a JSON column), passed through as they are.
    """
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    names = [*shared, *columns]
    fixed = tuple(_processor(table, dialect, n)(v) for n, v in shared.items())
    convert = [
        (i, _processor(table, dialect, n)) for i, n in enumerate(columns) if n not in encoded
    ]
    convert = [(i, p) for i, p in convert if p is not _same]
    params: list[tuple[Any, ...]] = []
    for row in rows:
        values = list(row)
        for i, processor in convert:
            values[i] = processor(values[i])
        params.append((*fixed, *values))
    if dialect.name == "postgresql":
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor, cursor.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy:
            for param in params:
                copy.write_row(param)
        return
    marks = ", ".join("?" for _ in names)
    connection.exec_driver_sql(
        f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({marks})",  # noqa: S608
        params,
    )


def _same(value: Any) -> Any:
    return value


def _processor(table: Table, dialect: Dialect, name: str) -> Callable[[Any], Any]:
    """The column type's conversion to the driver's form on this backend."""
    column_type = table.c[name].type
    processor = column_type.dialect_impl(dialect).bind_processor(dialect)
    return processor if processor is not None else _same
