"""Preparing rows in a process pool gives what preparing them here gives, in order."""

from __future__ import annotations

from smsdispatch.campaigns.preparation import RowPreparer, prepare_all
from smsdispatch.campaigns.recipients import BadRow, Row
from smsdispatch.campaigns.templates import Template
from smsdispatch.config.catalog import Catalog


def test_a_pool_prepares_the_same_results_in_the_same_order(catalog: Catalog) -> None:
    preparer = RowPreparer(catalog.get("cue"), Template.parse("Hi {name}"), "US")
    rows: list[Row | BadRow] = []
    for i in range(5000):
        if i % 97 == 0:
            rows.append(BadRow(i + 2, "has 3 fields; the header has 2"))
        else:
            phone = "bogus" if i % 89 == 0 else f"(212) 555-{i % 10000:04d}"
            rows.append(Row(i + 2, phone, {"name": f"N{i}" if i % 83 else ""}))

    here = list(prepare_all(preparer, rows, processes=0))
    pooled = list(prepare_all(preparer, rows, processes=2, threshold=100))

    assert pooled == here
    assert [r.line for r in pooled] == list(range(2, 5002))
    assert sum(isinstance(r, BadRow) for r in pooled) == len(
        [i for i in range(5000) if i % 97 == 0 or i % 89 == 0 or i % 83 == 0]
    )
