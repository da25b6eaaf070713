"""Reading delivery reports: what every vendor module's parser shares.

Each vendor module holds its report vocabulary as a data table (vendor word ->
`MessageStatus`) and a `parse_report` that reads one webhook request into a
`DeliveryReport`; the status queries (Restcomm, SMSBuddy) answer with the same
type, so webhooks and polling share one forward-only update
(`smsdispatch.store.reports.apply_report`).

The statuses a report may carry are drawn in vocabulary/delivery.py.
"""

from __future__ import annotations

import email.utils
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from smsdispatch.vocabulary.delivery import IncomingReport, MalformedReport
from smsdispatch.vocabulary.message import is_reference
from smsdispatch.vocabulary.status import MessageStatus

ReportTable = Mapping[str, MessageStatus]

# A row id as `str(id)` writes it (no sign, no leading zero, at most a
# BigInteger's 19 digits): the reference of a message sent before references
# were random (store migration 0005).
LEGACY_REFERENCE = re.compile(r"[1-9][0-9]{0,18}")


def lookup(table: ReportTable, word: str, vendor: str) -> MessageStatus:
    """A vendor's status word through its table; an unknown word is refused
    (4xx), not guessed at, so the vendor or an operator sees it."""
    try:
        return table[word]
    except KeyError:
        raise MalformedReport(f"{vendor}: unknown report status {word!r}") from None


def json_report(incoming: IncomingReport, vendor: str, kind: str) -> dict[str, Any]:
    """A webhook's body, POSTed as one JSON object (Messangi's callbacks,
    Skycore's postbacks); anything else is refused as malformed, each refusal
    naming the vendor and its `kind` of report."""
    if incoming.method != "POST":
        raise MalformedReport(f"{vendor}: a {kind} is a POST")
    try:
        body = json.loads(incoming.body)
    # ValueError covers JSONDecodeError, UnicodeDecodeError and a number past
    # int()'s digit limit; RecursionError, arrays nested too deep to read.
    except (ValueError, RecursionError) as exc:
        raise MalformedReport(f"{vendor}: the {kind} body is not JSON") from exc
    if not isinstance(body, dict):
        raise MalformedReport(f"{vendor}: the {kind} body is not a JSON object")
    return body


def our_reference(value: str | None) -> str | None:
    """Our message reference from a vendor's echo of it, or None when it is not one.

    Ours is a well-formed reference (32 lowercase hex digits, `is_reference`)
    or a legacy one: a row id as text ("17"), which is what we sent before
    references were random, and which the rows sent then keep as their
    reference (store migration 0005), so that their reports still match. A
    decimal that is not one of those rows' references matches no message (a
    report is matched by `messages.reference`, never by id). A Messangi
    batch's externalId, a zero-padded or signed number or anything else names
    no message of ours.
    """
    if value is None:
        return None
    value = value.strip()
    return value if is_reference(value) or is_legacy_reference(value) else None


def is_legacy_reference(value: str) -> bool:
    """A reference from before migration 0005: a row id, as `str(id)` writes it."""
    return LEGACY_REFERENCE.fullmatch(value) is not None


def text(value: object) -> str | None:
    """A non-empty string or number as text; None for anything else."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value).strip() or None


def moment(value: object) -> datetime | None:
    """A vendor's timestamp (ISO 8601 or RFC 2822; UTC when it names no
    offset) as an aware datetime; None when there is none or it cannot be
    read: a report is never refused over its timestamp."""
    if not isinstance(value, str) or not value.strip():
        return None
    value = value.strip()
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
    try:
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except OverflowError:  # "0001-01-01T00:00:00+01:00": before the first UTC moment
        return None
