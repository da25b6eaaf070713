"""Reading recipient lists: line numbers, malformed rows, encodings."""

from __future__ import annotations

import io

import pytest

from smsdispatch.campaigns.recipients import BadRow, RecipientListError, Row, read_csv


def rows_of(data: bytes, phone_column: str = "phone") -> list[Row | BadRow]:
    _, rows = read_csv(io.BytesIO(data), phone_column)
    return list(rows)


def test_rows_carry_their_line_and_values() -> None:
    rows = rows_of(b"phone,name\n+14155550101,Ana\n+14155550102,Bo\n")
    assert rows == [
        Row(2, "+14155550101", {"phone": "+14155550101", "name": "Ana"}),
        Row(3, "+14155550102", {"phone": "+14155550102", "name": "Bo"}),
    ]


def test_a_row_spanning_lines_is_reported_at_its_first_line() -> None:
    rows = rows_of(b'phone,note\n+14155550101,"two\nlines"\n+14155550102,x,extra\n')
    assert isinstance(rows[0], Row)
    assert rows[0].line == 2
    assert rows[1] == BadRow(4, "has 3 fields; the header has 2")


def test_a_line_that_is_not_utf8_costs_only_its_own_row() -> None:
    rows = rows_of(b"phone,name\n+14155550101,\xff\xfe\n+14155550102,Bo\n")
    assert rows[0] == BadRow(2, "not valid UTF-8")
    assert isinstance(rows[1], Row)
    assert rows[1].line == 3


def test_bad_quoting_is_reported_and_the_next_row_still_read() -> None:
    rows = rows_of(b'phone,name\n+14155550101,"Ana"x\n+14155550102,Bo\n')
    assert isinstance(rows[0], BadRow)
    assert rows[0].line == 2
    assert "malformed CSV" in rows[0].reason
    assert isinstance(rows[1], Row)
    assert rows[1].phone == "+14155550102"


def test_a_byte_order_mark_and_blank_lines_are_ignored() -> None:
    rows = rows_of(b"\xef\xbb\xbfphone\n\n+14155550101\n")
    assert rows == [Row(3, "+14155550101", {"phone": "+14155550101"})]


def test_a_list_without_the_phone_column_is_refused_as_a_whole() -> None:
    with pytest.raises(RecipientListError, match="no 'msisdn' column"):
        rows_of(b"phone,name\n", phone_column="msisdn")


def test_an_empty_file_is_refused() -> None:
    with pytest.raises(RecipientListError, match="empty"):
        rows_of(b"")
