"""The provider catalog: what each vendor account allows, read from TOML.

The catalog is operational data an operator edits without touching code: rate
limits, the senders an account owns and what kind each is, how big a request
may be, and how patiently to retry. What a vendor's *codes* mean is not here:
that is fixed by the vendor's document and lives in the vendor's module; the
catalog may only override the class of a code (`code_overrides`), for example
when an account manager says a code is transient on your route.
"""

from __future__ import annotations

import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from providers.outcomes import OutcomeKind


class SenderKind(StrEnum):
    SHORT_CODE = "short_code"  # 3-6 digits, high throughput
    LONG_CODE = "long_code"  # an ordinary number: one message per second
    ALPHANUMERIC = "alphanumeric"  # a brand name, at most 11 characters


class RateLimit(BaseModel):
    """`count` messages per `per_seconds`, smoothed, with a small burst."""

    model_config = ConfigDict(frozen=True)

    count: Annotated[int, Field(gt=0)]
    per_seconds: Annotated[float, Field(gt=0)]
    burst: Annotated[int, Field(ge=1)] = 1


class Sender(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    kind: SenderKind


class RetryPolicy(BaseModel):
    model_config = ConfigDict(frozen=True)

    # Attempts that reached the vendor or failed on the way there; rate-limit
    # answers and account pauses do not count.
    max_attempts: Annotated[int, Field(ge=1)] = 8
    backoff_base_seconds: Annotated[float, Field(gt=0)] = 1.0
    backoff_cap_seconds: Annotated[float, Field(gt=0)] = 300.0
    # How long to hold a vendor's messages after a throttle answer without a
    # Retry-After, and after an account-level error (bad key, no credit).
    rate_limited_wait_seconds: Annotated[float, Field(gt=0)] = 5.0
    pause_seconds: Annotated[float, Field(gt=0)] = 300.0


class ProviderEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    # Messages per vendor request: 1 where the vendor has no batch endpoint.
    batch_size: Annotated[int, Field(ge=1)] = 1
    # Message ids per Celery task: the worker sends them concurrently.
    task_size: Annotated[int, Field(ge=1)] = 50
    max_text_chars: Annotated[int, Field(ge=1)] = 918
    # Whether the vendor counts its rate limit in segments, not messages.
    counts_segments: bool = False
    account_limit: RateLimit | None = None
    sender_limits: dict[SenderKind, RateLimit] = {}
    senders: tuple[Sender, ...] = ()
    retry: RetryPolicy = RetryPolicy()
    code_overrides: dict[str, OutcomeKind] = {}

    @property
    def queue(self) -> str:
        return f"sms.{self.name}"

    def sender(self, sender_id: str) -> Sender | None:
        return next((s for s in self.senders if s.id == sender_id), None)


class Catalog(BaseModel):
    model_config = ConfigDict(frozen=True)

    providers: dict[str, ProviderEntry]

    @model_validator(mode="before")
    @classmethod
    def _name_entries(cls, data: dict[str, object]) -> dict[str, object]:
        providers = data.get("providers", {})
        if isinstance(providers, dict):
            for name, entry in providers.items():
                if isinstance(entry, dict):
                    entry.setdefault("name", name)
        return data

    def get(self, name: str) -> ProviderEntry:
        try:
            return self.providers[name]
        except KeyError:
            raise UnknownProviderError(name, sorted(self.providers)) from None


class UnknownProviderError(LookupError):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown provider {name!r}; known providers: {', '.join(known)}")
        self.name = name


def load_catalog(path: Path) -> Catalog:
    with path.open("rb") as fh:
        return Catalog.model_validate(tomllib.load(fh))
