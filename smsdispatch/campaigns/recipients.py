"""Reading a recipient list: a CSV file streamed row by row, or a plain list.

Memory stays flat whatever the file's size: rows are yielded one at a time
and nothing is kept. Each row carries the line it started on, so a rejection
can point the operator at it; a row spanning lines (a quoted newline) starts
where its first line does.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from smsdispatch.vocabulary.errors import InputError

# A CSV cell longer than this is malformed input, not a template value.
MAX_FIELD = 10_000


class RecipientListError(InputError, ValueError):
    """The list as a whole cannot be read (no header, no phone column)."""


@dataclass(frozen=True, slots=True)
class Row:
    line: int
    phone: str
    values: dict[str, str]


@dataclass(frozen=True, slots=True)
class BadRow:
    line: int
    reason: str


def read_csv(
    stream: BinaryIO, phone_column: str = "phone"
) -> tuple[list[str], Iterator[Row | BadRow]]:
    """The header, and the rows as they are read.

    Bytes are decoded line by line, so one line that is not UTF-8 costs only
    its own row. A UTF-8 byte-order mark (Excel writes one) is ignored.
    """
    lines = _DecodedLines(stream)
    reader = csv.reader(lines, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise RecipientListError("the file is empty: expected a header row") from None
    except csv.Error as exc:
        raise RecipientListError(f"line 1: the header cannot be read: {exc}") from None
    header = [name.strip() for name in header]
    if phone_column not in header:
        raise RecipientListError(
            f"the header has no {phone_column!r} column (columns: {', '.join(header)})"
        )
    duplicated = sorted({n for n in header if header.count(n) > 1})
    if duplicated:
        raise RecipientListError(f"the header names these columns twice: {', '.join(duplicated)}")
    return header, _rows(reader, lines, header, header.index(phone_column))


def _rows(
    reader: Iterator[list[str]], lines: _DecodedLines, header: list[str], phone_at: int
) -> Iterator[Row | BadRow]:
    width = len(header)
    while True:
        start = lines.count + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield BadRow(start, f"malformed CSV: {exc}")
            continue
        if lines.last_undecodable >= start:
            yield BadRow(start, "not valid UTF-8")
            continue
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue  # a blank line
        if len(fields) != width:
            yield BadRow(start, f"has {len(fields)} fields; the header has {width}")
            continue
        if any(len(f) > MAX_FIELD for f in fields):
            yield BadRow(start, f"a field is longer than {MAX_FIELD} characters")
            continue
        yield Row(start, fields[phone_at], dict(zip(header, fields, strict=True)))


def from_list(numbers: Iterable[str]) -> Iterator[Row]:
    """A plain list of numbers, numbered from 1 like lines."""
    for line, number in enumerate(numbers, start=1):
        yield Row(line, number, {})


class _DecodedLines:
    """The stream's lines as text, counting them and noting undecodable ones."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.count = 0
        self.last_undecodable = 0
        self._decode = codecs.getdecoder("utf-8")

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        raw = self._stream.readline()
        if not raw:
            raise StopIteration
        self.count += 1
        if self.count == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8) :]
        try:
            return self._decode(raw)[0]
        except UnicodeDecodeError:
            self.last_undecodable = self.count
            return self._decode(raw, "replace")[0]
