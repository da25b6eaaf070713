"""Listing and searching messages, and cancelling one not yet sent.

    GET    /v1/messages?status=&vendor=&campaign_id=&client_reference=&reference=
                       &since=&until=&limit=&after=&include=to,text
                       newest first; `next` is the `after` of the next page
    POST   /v1/messages/{id}/cancel   cancel it if no send of it may have reached
                       a vendor -> 200 {"id", "status": "cancelled"} | 404 | 409

The page's cursor is the last id a page showed (`next`): any id is a valid
cursor, so the document's pattern is the whole rule. The recipient and the
text are personal data: answered only when `include` names them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.params import Depends
from pydantic import StringConstraints

from smsdispatch.api.schemas import MAX_ID, CancelOut, MessageFound, MessagePage, RowId, Timestamp
from smsdispatch.store.control import Cancel, cancel_unsent, too_late
from smsdispatch.store.db import Database
from smsdispatch.store.message_search import MessageFilter, search_messages
from smsdispatch.vocabulary.status import MessageStatus

MAX_PAGE = 500
INCLUDABLE = ("to", "text")
# `include=to,text` or `include=to&include=text`: names from INCLUDABLE.
INCLUDE = r"^ *(?:to|text)? *(?:, *(?:to|text)? *)*$"
# A page's cursor is the last id it showed, in decimal: every string of this
# form is a cursor (the page after it holds the messages with smaller ids),
# so the document's pattern says exactly what is accepted. Ids stay far
# below 10**18 (the 64-bit column holds 9.2 * 10**18).
CURSOR = r"^[1-9][0-9]{0,17}$"


def encode_cursor(last_id: int) -> str:
    return str(last_id)


def decode_cursor(cursor: str) -> int:
    """The last id a page showed (`cursor` matched CURSOR already)."""
    return int(cursor)


def included(include: list[str] | None) -> set[str]:
    """`include=to,text` and `include=to&include=text` alike; a 422 for another name."""
    names = {part.strip() for item in include or () for part in item.split(",") if part.strip()}
    unknown = names - set(INCLUDABLE)
    if unknown:
        msg = f"unknown: {', '.join(sorted(unknown))}; choose from {', '.join(INCLUDABLE)}"
        detail = [{"loc": ["query", "include"], "msg": msg, "type": "value_error"}]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail)
    return names


def _utc(moment: datetime | None) -> datetime | None:
    """A time without an offset is read as UTC, as everywhere in smsdispatch."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def message_search_router(
    db: Database, clock: Callable[[], datetime], guarded: Sequence[Depends]
) -> APIRouter:
    router = APIRouter(prefix="/v1/messages", tags=["messages"], dependencies=list(guarded))

    @router.get("", response_model_exclude_unset=True)
    def search(
        status_: Annotated[MessageStatus | None, Query(alias="status")] = None,
        vendor: Annotated[str | None, Query(max_length=32)] = None,
        campaign_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
        client_reference: Annotated[str | None, Query(max_length=128)] = None,
        reference: Annotated[str | None, Query(max_length=32)] = None,
        since: Annotated[Timestamp | None, Query(description="submitted at or after")] = None,
        until: Annotated[Timestamp | None, Query(description="submitted before")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
        after: Annotated[
            str | None, Query(pattern=CURSOR, description="a page's `next` (the last id it showed)")
        ] = None,
        include: Annotated[
            list[Annotated[str, StringConstraints(pattern=INCLUDE)]] | None,
            Query(max_length=16, description="personal data to add: to, text"),
        ] = None,
    ) -> MessagePage:
        wanted = MessageFilter(
            status=status_.value if status_ else None,
            provider=vendor,
            campaign_id=campaign_id,
            client_reference=client_reference,
            reference=reference,
            since=_utc(since),
            until=_utc(until),
            before_id=decode_cursor(after) if after else None,
        )
        columns = {"recipient" if name == "to" else name for name in included(include)}
        with db.session() as session:
            rows = search_messages(session, wanted, limit + 1, include=columns)
        page = [MessageFound.model_validate(_renamed(row)) for row in rows[:limit]]
        more = len(rows) > limit
        return MessagePage(messages=page, next=encode_cursor(page[-1].id) if more else None)

    cancelling: dict[int | str, dict[str, Any]] = {
        404: {"description": "no such message"},
        409: {"description": "already sending or sent (or settled): not cancelled"},
    }

    # Not DELETE: a cancelled message stays, readable with its status.
    @router.post("/{message_id:int}/cancel", responses=cancelling)
    def cancel(message_id: RowId) -> CancelOut:
        with db.session() as session, session.begin():
            what, current = cancel_unsent(
                session, message_id, clock(), "cancelled over the API before it was sent"
            )
        if what is Cancel.NOT_FOUND:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no message {message_id}")
        if what is Cancel.TOO_LATE:
            raise HTTPException(status.HTTP_409_CONFLICT, too_late(message_id, current))
        return CancelOut(id=message_id, status=MessageStatus.CANCELLED.value)

    return router


def _renamed(row: dict[str, Any]) -> dict[str, Any]:
    if "recipient" in row:
        row = {**row, "to": row.pop("recipient")}
    return row
