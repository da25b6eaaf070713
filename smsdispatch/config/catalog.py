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
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator

from smsdispatch.config.routes import (
    BreakerPolicy,
    DeliveryPolicy,
    Route,
    RouteTable,
    WeightPolicy,
)
from smsdispatch.vocabulary.errors import NotFoundError
from smsdispatch.vocabulary.outcomes import OutcomeKind

POOL_PREFIX = "pool:"


class SenderKind(StrEnum):
    SHORT_CODE = "short_code"  # 3-6 digits, high throughput
    LONG_CODE = "long_code"  # an ordinary number: one message per second
    ALPHANUMERIC = "alphanumeric"  # a brand name, at most 11 characters

    @classmethod
    def guess(cls, sender: str) -> SenderKind:
        """The kind of a sender the catalog does not list, from its shape."""
        if sender.isdigit():
            return cls.SHORT_CODE if len(sender) <= 6 else cls.LONG_CODE
        return cls.ALPHANUMERIC


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


class QuietHours(BaseModel):
    """Hours a vendor does not send, in its own time zone (SMSBuddy: 21:00-10:00)."""

    model_config = ConfigDict(frozen=True)

    start: time  # quiet from here...
    end: time  # ...until here (may wrap past midnight)
    timezone: str
    # Hold messages before sending while quiet. Off: only a vendor's own
    # "not at this hour" answer (SMSBuddy 451) reschedules to `end`.
    hold_before_sending: bool = False

    def next_open(self, now: datetime) -> datetime | None:
        """When sending may resume, or None if `now` is outside the quiet hours."""
        zone = ZoneInfo(self.timezone)
        local = now.astimezone(zone)
        clock = local.time().replace(tzinfo=None)
        if self.start <= self.end:
            quiet = self.start <= clock < self.end
        else:
            quiet = clock >= self.start or clock < self.end
        if not quiet:
            return None
        opens = datetime.combine(local.date(), self.end, tzinfo=zone)
        if opens <= local:
            opens = datetime.combine(local.date() + timedelta(days=1), self.end, tzinfo=zone)
        return opens.astimezone(UTC)


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
    # A vendor's "too many requests" pauses it for every worker: this long
    # the first time, doubling with each throttle in a row, up to the cap.
    throttle_pause_seconds: Annotated[float, Field(gt=0)] = 2.0
    throttle_pause_cap_seconds: Annotated[float, Field(gt=0)] = 60.0
    # A code the vendor's document does not give is retried within this
    # policy's budget; when the same one comes back for this many distinct
    # messages within the window, it is taken for an account problem the
    # document left out and pauses the vendor for `pause_seconds`, with the
    # vendor's words as the reason. (Once its meaning is known, classify it
    # in `code_overrides`: it is then no longer undocumented.)
    undocumented_pause_after: Annotated[int, Field(ge=1)] = 5
    undocumented_window_seconds: Annotated[float, Field(gt=0)] = 60.0


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
    # Named groups of senders: a message sent "from" a pool goes from the
    # member that is free soonest (N long codes: about N messages a second).
    pools: dict[str, tuple[str, ...]] = {}
    quiet_hours: QuietHours | None = None
    retry: RetryPolicy = RetryPolicy()
    code_overrides: dict[str, OutcomeKind] = {}
    # A message the vendor accepted and never sent a final report for is
    # expired, saying so, this long after it was sent (reports/deadline.py).
    # 48 h: past the 24-72 h validity operators give an SMS, so a late
    # report still lands first; a vendor without a status query (Cue,
    # Skycore) has nothing else to settle such a message.
    report_deadline_seconds: Annotated[float, Field(gt=0)] = 172800.0

    @property
    def request_size(self) -> int:
        """Messages per vendor request: the batch size, but never more than the
        account's burst, so a batch cannot arrive as a spike above the ceiling."""
        if self.account_limit is None:
            return self.batch_size
        return max(1, min(self.batch_size, self.account_limit.burst))

    def request_size_for(self, sender_id: str) -> int:
        """`request_size`, and never more than the sender's burst either: a
        long code (one a second) sends one message per request. A pool counts
        as its slowest member."""
        members = self.pool(sender_id) or (sender_id,)
        bursts = [
            rate.burst
            for m in members
            if (rate := self.sender_limits.get(self.kind_of(m))) is not None
        ]
        return max(1, min([self.request_size, *bursts]))

    def kind_of(self, sender_id: str) -> SenderKind:
        known = self.sender(sender_id)
        return known.kind if known else SenderKind.guess(sender_id)

    def sender(self, sender_id: str) -> Sender | None:
        return next((s for s in self.senders if s.id == sender_id), None)

    def pool(self, sender_id: str) -> tuple[str, ...] | None:
        """The members of the pool `sender_id` names ("pool:<name>"), if it is one."""
        if not sender_id.startswith(POOL_PREFIX):
            return None
        return self.pools.get(sender_id.removeprefix(POOL_PREFIX))

    @model_validator(mode="after")
    def _pools_hold_known_senders(self) -> ProviderEntry:
        for name, members in self.pools.items():
            unknown = [m for m in members if self.sender(m) is None]
            if unknown or not members:
                raise ValueError(f"{self.name} pool {name!r}: unknown or no senders {unknown}")
            # Either every member has its own limit or none has: a pool that
            # mixed them could send from a long code without charging it.
            limited = {self.kind_of(m) in self.sender_limits for m in members}
            if len(limited) > 1:
                raise ValueError(
                    f"{self.name} pool {name!r} mixes senders with and without "
                    "a per-sender limit; make one pool of each"
                )
        return self


class Catalog(BaseModel):
    model_config = ConfigDict(frozen=True)

    providers: dict[str, ProviderEntry]
    # Where a message that names no vendor goes (config/routes.py).
    routes: dict[str, Route] = {}
    # When a vendor's circuit breaker opens and closes (routing/health.py).
    breaker: BreakerPolicy = BreakerPolicy()
    # How routes' weights move with health (routing/weights.py).
    weights: WeightPolicy = WeightPolicy()
    # Delivery figures from reports, and when a vendor is slow (routing/delivery.py).
    delivery: DeliveryPolicy = DeliveryPolicy()

    @model_validator(mode="before")
    @classmethod
    def _name_entries(cls, data: dict[str, object]) -> dict[str, object]:
        for section in ("providers", "routes"):
            entries = data.get(section, {})
            if isinstance(entries, dict):
                for name, entry in entries.items():
                    if isinstance(entry, dict):
                        entry.setdefault("name", name)
        return data

    @model_validator(mode="after")
    def _routes_name_known_vendors_and_senders(self) -> Catalog:
        for route in self.routes.values():
            for choice in route.vendors:
                entry = self.providers.get(choice.vendor)
                if entry is None:
                    raise ValueError(
                        f"route {route.name!r} names unknown vendor {choice.vendor!r}; "
                        f"known vendors: {', '.join(sorted(self.providers))}"
                    )
                if entry.sender(choice.sender) is None and entry.pool(choice.sender) is None:
                    raise ValueError(
                        f"route {route.name!r}: {choice.vendor} has no sender or pool "
                        f"{choice.sender!r}; its senders: "
                        f"{', '.join(s.id for s in entry.senders) or 'none listed'}"
                    )
        self.route_table  # noqa: B018 (builds it: a destination in two routes fails here)
        return self

    @cached_property
    def route_table(self) -> RouteTable:
        return RouteTable(self.routes)

    def get(self, name: str) -> ProviderEntry:
        try:
            return self.providers[name]
        except KeyError:
            raise UnknownProviderError(name, sorted(self.providers)) from None


class UnknownProviderError(NotFoundError, LookupError):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown provider {name!r}; known providers: {', '.join(known)}")
        self.name = name


def load_catalog(path: Path) -> Catalog:
    with path.open("rb") as fh:
        return Catalog.model_validate(tomllib.load(fh))
