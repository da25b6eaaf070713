"""What the HTTP API takes and answers (its OpenAPI document is built from these)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: Annotated[str, Field(max_length=32, description="E.164, e.g. +27821230001")]
    text: Annotated[str, Field(max_length=2000)]
    provider: Annotated[str, Field(max_length=32)]
    sender: Annotated[str | None, Field(max_length=32)] = None
    client_reference: Annotated[str | None, Field(max_length=128)] = None
    idempotency_key: Annotated[str | None, Field(max_length=128)] = None
    priority: Literal[0, 1] = 0


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    messages: Annotated[list[MessageIn], Field(min_length=1)]


class Accepted(BaseModel):
    id: int


class Rejected(BaseModel):
    index: int
    field: str
    reason: str


class BatchOut(BaseModel):
    accepted: list[tuple[int, int]] = Field(description="(request index, message id) pairs")
    rejected: list[Rejected]


class MessageStatusOut(BaseModel):
    """A message's state; the recipient and the text are not echoed back."""

    id: int
    provider: str
    status: str
    attempts: int
    tracking_id: str | None
    vendor_status: str | None
    error_code: str | None
    error_reason: str | None
    client_reference: str | None
    created_at: datetime
    sent_at: datetime | None
    final_at: datetime | None
