"""What operators do with campaigns: create, fill, preview, schedule, control.

Every status change is one conditional UPDATE (`WHERE status IN (...)`,
store/campaigns.py), so two operators, or an operator and the dispatcher,
cannot both win; the loser is told the campaign's current status. Pausing
and cancelling also take back the messages released to the broker but not
yet claimed by a worker (store/campaign_messages.py): a worker claims only
`queued` rows, so a row taken back here is never sent, and one already
claimed is sent exactly once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from sqlalchemy import func, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.orm import Session

from smsdispatch.campaigns.importer import ImportResult, import_rows
from smsdispatch.campaigns.preparation import RowPreparer
from smsdispatch.campaigns.recipients import BadRow, from_list, read_csv
from smsdispatch.campaigns.templates import Template, TemplateError
from smsdispatch.config.catalog import Catalog
from smsdispatch.config.settings import Settings
from smsdispatch.producer.validation import InvalidMessage, Validator
from smsdispatch.store.campaign_messages import CampaignTarget, finish_unsent, take_back
from smsdispatch.store.campaigns import (
    back_to_scheduled_if_early,
    campaign_status,
    count_by_status,
    create_campaign,
    move_campaign,
    refresh_counts,
)
from smsdispatch.store.clock import Clock
from smsdispatch.store.db import Database
from smsdispatch.store.models import campaigns, messages
from smsdispatch.vocabulary.errors import ConflictError, InputError, NotFoundError
from smsdispatch.vocabulary.status import CAMPAIGN_TRANSITIONS, CampaignStatus, MessageStatus


class CampaignError(InputError, ValueError):
    """A field of a campaign request is wrong; `field` names it, for the 422's `loc`."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class CampaignNotFound(NotFoundError, LookupError):
    def __init__(self, campaign_id: int) -> None:
        super().__init__(f"campaign {campaign_id} does not exist")
        self.campaign_id = campaign_id


class CampaignConflict(ConflictError, ValueError):
    """The campaign's status does not allow the action: nothing in the request
    is wrong (a 409, not a 422), and the caller needs the status to decide.

    A ValueError still, as the string-coded `CampaignError` it replaces was.
    """

    def __init__(
        self,
        campaign_id: int,
        status: CampaignStatus,
        action: str,
        allowed: frozenset[CampaignStatus],
    ) -> None:
        super().__init__(
            f"campaign {campaign_id} is {status}; {action} applies to a "
            f"{' or '.join(sorted(allowed))} campaign"
        )
        self.campaign_id = campaign_id
        self.status = status
        self.action = action
        self.allowed = allowed


@dataclass(frozen=True, slots=True)
class CampaignSpec:
    name: str
    provider: str
    template: str
    sender: str | None = None
    start_at: datetime | None = None  # timezone-aware
    end_at: datetime | None = None
    timezone: str = "UTC"
    default_region: str | None = None


@dataclass(frozen=True, slots=True)
class PreviewMessage:
    recipient: str  # masked: the operator sees which row, not the whole number
    text: str
    encoding: str
    segments: int


@dataclass(frozen=True, slots=True)
class Preview:
    messages: int
    segments: int  # the cost estimate: vendors bill per segment
    by_encoding: dict[str, int]
    max_segments: int
    samples: list[PreviewMessage]


class Campaigns:
    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        db: Database,
        clock: Clock | None = None,
    ) -> None:
        self.catalog = catalog
        self.db = db
        self.clock = clock or db.clock
        self.validator = Validator(settings, catalog)

    # -- creating and filling ----------------------------------------------------

    def create(self, spec: CampaignSpec) -> int:
        values = self._checked(spec)
        now = self.clock()
        with self.db.session() as session, session.begin():
            return create_campaign(session, values, now)

    def _checked(self, spec: CampaignSpec) -> dict[str, Any]:
        if not spec.name.strip():
            raise CampaignError("name", "is empty")
        try:
            entry = self.validator.provider(spec.provider)
            sender = self.validator.sender(entry, spec.sender)
        except InvalidMessage as exc:
            raise CampaignError(exc.field, exc.reason) from None
        try:
            Template.parse(spec.template)
        except TemplateError as exc:
            raise CampaignError("template", str(exc)) from None
        _check_zone(spec.timezone)
        region = spec.default_region.upper() if spec.default_region else None
        if region is not None and region not in phonenumbers.SUPPORTED_REGIONS:
            raise CampaignError("default_region", f"{region!r} is not a region code such as US")
        _check_window(spec.start_at, spec.end_at)
        return {
            "name": spec.name.strip(),
            "provider": entry.name,
            "sender": sender,
            "template": spec.template,
            "default_region": region,
            "start_at": spec.start_at,
            "end_at": spec.end_at,
            "timezone": spec.timezone,
        }

    def import_csv(
        self,
        campaign_id: int,
        stream: BinaryIO,
        *,
        phone_column: str = "phone",
        on_reject: Callable[[BadRow], None] | None = None,
        on_progress: Callable[[ImportResult], None] | None = None,
    ) -> ImportResult:
        campaign = self.get(campaign_id)
        header, rows = read_csv(stream, phone_column)
        template = Template.parse(campaign["template"])
        missing = [name for name in template.names if name not in header]
        if missing:
            raise CampaignError(
                "recipients",
                f"the template uses {', '.join('{' + n + '}' for n in missing)} but the "
                f"file has no such column (columns: {', '.join(header)})",
            )
        return self._import(campaign, rows, on_reject, on_progress)

    def import_numbers(self, campaign_id: int, numbers: Iterable[str]) -> ImportResult:
        campaign = self.get(campaign_id)
        if Template.parse(campaign["template"]).names:
            raise CampaignError(
                "recipients", "the template has placeholders: give a CSV file with their columns"
            )
        return self._import(campaign, from_list(numbers), None, None)

    def _import(
        self,
        campaign: RowMapping,
        rows: Iterable[Any],
        on_reject: Callable[[BadRow], None] | None,
        on_progress: Callable[[ImportResult], None] | None,
    ) -> ImportResult:
        entry = self.catalog.get(campaign["provider"])
        preparer = RowPreparer(
            entry, Template.parse(campaign["template"]), campaign["default_region"]
        )
        target = CampaignTarget(campaign["id"], campaign["provider"], campaign["sender"])
        return import_rows(
            self.db, target, rows, preparer, on_reject=on_reject, on_progress=on_progress
        )

    # -- reading -------------------------------------------------------------------

    def get(self, campaign_id: int) -> RowMapping:
        with self.db.session() as session:
            row = (
                session.execute(select(campaigns).where(campaigns.c.id == campaign_id))
                .mappings()
                .first()
            )
        if row is None:
            raise CampaignNotFound(campaign_id)
        return row

    def list(self) -> list[RowMapping]:
        with self.db.session() as session:
            return list(
                session.execute(select(campaigns).order_by(campaigns.c.id.desc())).mappings()
            )

    def live_counts(self, campaign_id: int) -> dict[str, int]:
        """Its messages by status, counted now (an index range scan)."""
        with self.db.session() as session:
            return count_by_status(session, campaign_id)

    def preview(self, campaign_id: int, samples: int = 5) -> Preview:
        self.get(campaign_id)
        m = messages.c
        with self.db.session() as session:
            totals = session.execute(
                select(m.encoding, func.count(), func.sum(m.segments), func.max(m.segments))
                .where(m.campaign_id == campaign_id)
                .group_by(m.encoding)
            ).all()
            rows = session.execute(
                select(m.recipient, m.text, m.encoding, m.segments)
                .where(m.campaign_id == campaign_id)
                .order_by(m.id)
                .limit(samples)
            ).all()
        return Preview(
            messages=sum(n for _, n, _, _ in totals),
            segments=sum(int(s or 0) for _, _, s, _ in totals),
            by_encoding={e: n for e, n, _, _ in totals},
            max_segments=max((int(x or 0) for _, _, _, x in totals), default=0),
            samples=[PreviewMessage(mask(r), t, e, s) for r, t, e, s in rows],
        )

    # -- controlling -----------------------------------------------------------------

    def schedule(
        self,
        campaign_id: int,
        start_at: datetime | None = None,
        end_at: datetime | None = None,
        timezone: str | None = None,
    ) -> None:
        """Schedule a draft; `timezone`, if given, becomes the zone times are shown in."""
        campaign = self.get(campaign_id)
        if timezone is not None:
            _check_zone(timezone)
        start_at = start_at or campaign["start_at"]
        end_at = end_at or campaign["end_at"]
        if start_at is None:
            raise CampaignError("start_at", "a scheduled campaign needs a start time")
        _check_window(start_at, end_at)
        self._require_recipients(campaign)
        zone = {"timezone": timezone} if timezone is not None else {}
        self._move(campaign_id, "schedule", start_at=start_at, end_at=end_at, **zone)

    def start(self, campaign_id: int) -> None:
        """Start now, whatever the schedule said."""
        campaign = self.get(campaign_id)
        self._require_recipients(campaign)
        now = self.clock()
        self._move(campaign_id, "start", start_at=now, started_at=now)

    def pause(self, campaign_id: int) -> int:
        """Stop releasing; return how many released messages were taken back."""
        with self.db.session() as session, session.begin():
            self._transition(session, campaign_id, "pause")
            return take_back(session, campaign_id, self.clock())

    def resume(self, campaign_id: int) -> None:
        """Back to running, or to scheduled if it was paused before its start."""
        now = self.clock()
        with self.db.session() as session, session.begin():
            self._transition(session, campaign_id, "resume")
            back_to_scheduled_if_early(session, campaign_id, now)

    def cancel(self, campaign_id: int) -> int:
        """Stop for good; return how many unsent messages were marked cancelled."""
        now = self.clock()
        with self.db.session() as session, session.begin():
            self._transition(session, campaign_id, "cancel", finished_at=now)
            count = finish_unsent(
                session,
                campaign_id,
                now,
                MessageStatus.CANCELLED,
                "campaign_cancelled",
                "its campaign was cancelled before it was sent",
            )
            refresh_counts(session, campaign_id, now)
            return count

    def _move(self, campaign_id: int, action: str, **values: Any) -> None:
        with self.db.session() as session, session.begin():
            self._transition(session, campaign_id, action, **values)

    def _transition(self, session: Session, campaign_id: int, action: str, **values: Any) -> None:
        allowed, target = CAMPAIGN_TRANSITIONS[action]
        if move_campaign(session, campaign_id, allowed, target, self.clock(), **values):
            return
        current = campaign_status(session, campaign_id)
        if current is None:
            raise CampaignNotFound(campaign_id)
        raise CampaignConflict(campaign_id, CampaignStatus(current), action, allowed)

    @staticmethod
    def _require_recipients(campaign: RowMapping) -> None:
        if campaign["imported"] <= 0:
            raise CampaignError("recipients", "the campaign has no recipients yet: import some")


def mask(number: str) -> str:
    """+14155550123 -> +1415****123: enough to find the row, not to dial it."""
    if len(number) <= 8:
        return number[:3] + "*" * (len(number) - 3)
    return number[:5] + "*" * (len(number) - 8) + number[-3:]


def _check_zone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CampaignError("timezone", f"{name!r} is not a known time zone") from None


def _check_window(start_at: datetime | None, end_at: datetime | None) -> None:
    for name, value in (("start_at", start_at), ("end_at", end_at)):
        if value is not None and value.tzinfo is None:
            raise CampaignError(name, "needs a time zone (an offset or a zone name)")
    if start_at is not None and end_at is not None and end_at <= start_at:
        raise CampaignError("end_at", "is not after the start time")
