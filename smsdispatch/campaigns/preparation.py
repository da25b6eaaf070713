"""Turning recipient rows into messages ready to store, or saying why not.

The same checks a single message passes (E.164, encoding, the vendor's
maximum length), applied per row with the campaign's template.

Parsing phone numbers is most of an import's CPU time (about 25 µs a
number), so large lists are prepared by a pool of processes, in chunks, in
order: `prepare_all` yields results in the rows' order whatever the pool
does, so rejections are reported by line in order and the first of two
duplicate rows is the one kept.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from multiprocessing.pool import AsyncResult
from typing import Any

from smsdispatch.campaigns.recipients import BadRow, Row
from smsdispatch.campaigns.templates import MissingValue, Template
from smsdispatch.config.catalog import ProviderEntry
from smsdispatch.producer.encoding import detect_encoding, segment_count
from smsdispatch.producer.validation import InvalidMessage, check_text, normalize_number
from smsdispatch.vocabulary.errors import InputError
from smsdispatch.vocabulary.message import Encoding

# Rows per chunk handed to a process: big enough that pickling overhead is
# small, small enough that memory stays flat.
CHUNK = 2000
# Below this many rows a pool costs more to start than it saves; the list
# is prepared in this process.
POOL_THRESHOLD = 20_000


class RowRejected(InputError, ValueError):
    """Why one recipient row cannot become a message."""


@dataclass(frozen=True, slots=True)
class Prepared:
    line: int
    recipient: str  # E.164
    text: str
    encoding: Encoding
    segments: int
    # The placeholder values in template order, as JSON text: encoded here,
    # in the pool, rather than by the importer's single process.
    params_json: str | None


@dataclass(frozen=True, slots=True)
class RowPreparer:
    """Everything needed to prepare a row; picklable, for the process pool.

    `entry` None: a routed campaign. The text is checked against each vendor
    of the number's route when the row is routed (campaigns/routing.py), not
    here: only emptiness, encoding and segments (the same for every vendor).
    """

    entry: ProviderEntry | None
    template: Template
    default_region: str | None

    def prepare(self, row: Row) -> Prepared:
        try:
            recipient = normalize_number(row.phone, self.default_region)
        except InvalidMessage as exc:
            raise RowRejected(f"phone {row.phone.strip()!r} {exc.reason}") from None
        params: str | None = None
        try:
            text = self.template.render(row.values)
        except MissingValue as exc:
            raise RowRejected(f"column {exc.name!r} is empty") from None
        if self.template.names:
            params = json.dumps(self.template.values_in_order(row.values))
        if self.entry is None:
            if not text.strip():
                raise RowRejected("the message text is empty")
            encoding = detect_encoding(text)
            return Prepared(
                row.line, recipient, text, encoding, segment_count(text, encoding), params
            )
        try:
            encoding, segments = check_text(self.entry, text)
        except InvalidMessage as exc:
            raise RowRejected(f"the message {exc.reason}") from None
        return Prepared(row.line, recipient, text, encoding, segments, params)

    def prepare_wire(self, rows: list[Wire]) -> list[Wire]:
        """`prepare_chunk` for the pool, in tuples both ways (see `Wire`)."""
        out: list[Wire] = []
        for line, phone, values in rows:
            if phone is None:
                out.append((line, None, values))
                continue
            try:
                p = self.prepare(Row(line, phone, values))
            except RowRejected as exc:
                out.append((line, None, str(exc)))
                continue
            out.append((line, p.recipient, p.text, p.encoding.value, p.segments, p.params_json))
        return out

    def prepare_chunk(self, rows: list[Row | BadRow]) -> list[Prepared | BadRow]:
        out: list[Prepared | BadRow] = []
        for row in rows:
            if isinstance(row, BadRow):
                out.append(row)
                continue
            try:
                out.append(self.prepare(row))
            except RowRejected as exc:
                out.append(BadRow(row.line, str(exc)))
        return out


def prepare_all(
    preparer: RowPreparer,
    rows: Iterable[Row | BadRow],
    processes: int | None = None,
    threshold: int = POOL_THRESHOLD,
) -> Iterator[Prepared | BadRow]:
    """Every row prepared or rejected, in order; in a pool once the list is long.

    `processes` pool workers (0: none); by default one fewer than the cores,
    because this process is busy too, reading the file and storing rows.
    """
    rows = iter(rows)
    first = list(islice(rows, threshold))
    processes = processes if processes is not None else max(1, (os.cpu_count() or 1))
    if len(first) < threshold or processes < 1:
        yield from preparer.prepare_chunk(first)
        for chunk in _chunks(rows):
            yield from preparer.prepare_chunk(chunk)
        return
    # Not fork: the caller may be a threaded server (the HTTP API). A fork
    # server that has imported only this module forks the workers, so each
    # holds what preparing rows needs, not the caller's whole program (a
    # spawned worker would import the CLI or the server again).
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    with _main_module_hidden():
        pool = context.Pool(processes)
    with pool:
        # A bounded window of chunks in flight (`Pool.imap` would read the
        # whole file ahead into its queue): memory stays flat.
        pending: deque[AsyncResult[list[Wire]]] = deque()
        for chunk in _chunks(_chain(first, rows)):
            pending.append(pool.apply_async(preparer.prepare_wire, ([_to_wire(r) for r in chunk],)))
            if len(pending) >= 2 * processes:
                yield from map(_from_wire, pending.popleft().get())
        while pending:
            yield from map(_from_wire, pending.popleft().get())


@contextmanager
def _main_module_hidden() -> Iterator[None]:
    """Start pool workers without the caller's main module.

    A worker started by spawn or a fork server first imports the parent's
    `__main__` (multiprocessing's "safe importing of main module"): for the
    `smsdispatch` command that is the whole CLI, about 60 MB a worker of
    modules it never uses. The workers need only this module, which the fork
    server has imported; so `__main__` looks, while they start, like an
    interactive session's, which is not imported.
    """
    main = sys.modules["__main__"]
    saved: dict[str, Any] = {
        name: main.__dict__[name] for name in ("__spec__", "__file__") if name in main.__dict__
    }
    main.__dict__.pop("__file__", None)
    main.__dict__["__spec__"] = None
    try:
        yield
    finally:
        main.__dict__.update(saved)


# Rows and results cross to the pool as plain tuples: pickling a dataclass
# costs about 6 µs, a tuple under 1 µs, and a million rows cross twice.
# (line, phone, values) or (line, None, reason) one way; (line, recipient,
# text, encoding, segments, params) or (line, None, reason) the other.
Wire = tuple[Any, ...]


def _to_wire(row: Row | BadRow) -> Wire:
    if isinstance(row, BadRow):
        return (row.line, None, row.reason)
    return (row.line, row.phone, row.values)


def _from_wire(item: Wire) -> Prepared | BadRow:
    if item[1] is None:
        return BadRow(item[0], item[2])
    line, recipient, text, encoding, segments, params = item
    return Prepared(line, recipient, text, Encoding(encoding), segments, params)


def _chain(first: list[Row | BadRow], rest: Iterator[Row | BadRow]) -> Iterator[Row | BadRow]:
    yield from first
    yield from rest


def _chunks(rows: Iterator[Row | BadRow]) -> Iterator[list[Row | BadRow]]:
    while chunk := list(islice(rows, CHUNK)):
        yield chunk
