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

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
import redis
from sqlalchemy import func, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.orm import Session

from smsdispatch.campaigns.importer import ImportResult, import_rows
from smsdispatch.campaigns.preparation import RowPreparer
from smsdispatch.campaigns.recipients import BadRow, from_list, read_csv
from smsdispatch.campaigns.routing import ChunkRouter, expected_split, fits
from smsdispatch.campaigns.templates import Template, TemplateError
from smsdispatch.config.catalog import Catalog
from smsdispatch.config.routes import RouteVendor
from smsdispatch.config.settings import Settings
from smsdispatch.producer.validation import (
    AUTO,
    InvalidMessage,
    SendRequest,
    Validator,
    is_routed,
)
from smsdispatch.routing.router import Router, Snapshot
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
from smsdispatch.store.destinations import price_of, route_of_number
from smsdispatch.store.models import campaigns, messages
from smsdispatch.vocabulary.errors import ConflictError, InputError, NotFoundError
from smsdispatch.vocabulary.status import CAMPAIGN_TRANSITIONS, CampaignStatus, MessageStatus


class CampaignError(InputError, ValueError):
    """A field of a campaign request is wrong; `field` names it, for the 422's `loc`."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class CampaignNotReady(ConflictError, ValueError):
    """The request is fine, but the campaign lacks what it needs first (its
    recipients, a start time, the columns its template names): a 409 that
    says what to do, not a 422 about the request."""

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
    # None or "auto": each recipient's message is routed (campaigns/routing.py).
    provider: str | None
    template: str
    sender: str | None = None
    start_at: datetime | None = None  # timezone-aware
    end_at: datetime | None = None
    timezone: str = "UTC"
    default_region: str | None = None
    # Where each of its messages' status changes are posted, and the API key
    # whose secret signs them (None: CALLBACK_SECRET).
    status_callback: str | None = None
    callback_key_id: int | None = None


@dataclass(frozen=True, slots=True)
class PreviewMessage:
    recipient: str  # masked: the operator sees which row, not the whole number
    text: str
    encoding: str
    segments: int


@dataclass(frozen=True, slots=True)
class VendorShare:
    """What one vendor is expected to carry of the campaign, and what it costs."""

    vendor: str
    messages: float  # expected: a routed campaign's split is a weight share
    segments: float
    # segments x the route vendor's price_per_segment; None: some of its
    # segments fall where the catalog gives no price
    cost: Decimal | None
    unpriced_segments: float = 0.0


@dataclass(frozen=True, slots=True)
class Preview:
    messages: int
    segments: int  # the cost estimate: vendors bill per segment
    by_encoding: dict[str, int]
    max_segments: int
    samples: list[PreviewMessage]
    routed: bool = False
    vendors: list[VendorShare] = field(default_factory=list)
    # Messages no vendor of their route could carry now (a routed campaign).
    unroutable: int = 0


class Campaigns:
    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        db: Database,
        clock: Clock | None = None,
        router: Router | None = None,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.db = db
        self.clock = clock or db.clock
        self.validator = Validator(settings, catalog)
        self._router = router

    @property
    def router(self) -> Router:
        """Made when a routed campaign first needs it: named-vendor campaigns never
        need Redis here."""
        if self._router is None:
            client = redis.Redis.from_url(
                self.settings.redis_url, socket_timeout=5, socket_connect_timeout=2
            )
            self._router = Router(self.catalog, client)
        return self._router

    # -- creating and filling ----------------------------------------------------

    def create(self, spec: CampaignSpec) -> int:
        values = self._checked(spec)
        now = self.clock()
        with self.db.session() as session, session.begin():
            return create_campaign(session, values, now)

    def _checked(self, spec: CampaignSpec) -> dict[str, Any]:
        if not spec.name.strip():
            raise CampaignError("name", "is empty")
        provider, sender = self._vendor(spec)
        try:
            Template.parse(spec.template)
        except TemplateError as exc:
            raise CampaignError("template", str(exc)) from None
        _check_zone(spec.timezone)
        region = spec.default_region.upper() if spec.default_region else None
        if region is not None and region not in phonenumbers.SUPPORTED_REGIONS:
            raise CampaignError("default_region", f"{region!r} is not a region code such as US")
        _check_window(spec.start_at, spec.end_at)
        self._check_callback(spec)
        return {
            "name": spec.name.strip(),
            "provider": provider,
            "sender": sender,
            "template": spec.template,
            "default_region": region,
            "start_at": spec.start_at,
            "end_at": spec.end_at,
            "timezone": spec.timezone,
            "status_callback": spec.status_callback,
            "callback_key_id": spec.callback_key_id if spec.status_callback else None,
        }

    def _check_callback(self, spec: CampaignSpec) -> None:
        """The same checks as a single message's (producer/validation.py)."""
        request = SendRequest(
            "", "", status_callback=spec.status_callback, callback_key_id=spec.callback_key_id
        )
        try:
            self.validator.callback(request)
        except InvalidMessage as exc:
            raise CampaignError(exc.field, exc.reason) from None

    def _vendor(self, spec: CampaignSpec) -> tuple[str | None, str | None]:
        """The campaign's vendor and sender; (None, None) for a routed campaign."""
        if is_routed(spec.provider):
            if spec.sender is not None:
                raise CampaignError(
                    "sender",
                    "a routed campaign sends from each route's sender: name a provider too",
                )
            if not self.catalog.routes:
                raise CampaignError(
                    "provider", "the catalog has no routes: name a provider, or add a route"
                )
            routable = {
                v.vendor
                for route in self.catalog.routes.values()
                for v in route.vendors
                if not self.validator.unconfigured[v.vendor]
            }
            if not routable:
                # Its recipients could not be routed: refuse it now, not row by row.
                unset = sorted({n for m in self.validator.unconfigured.values() for n in m})
                raise CampaignError(
                    "provider",
                    "no vendor of any route has all its settings "
                    f"({', '.join(unset[:4])}{', ...' if len(unset) > 4 else ''} not set): "
                    "name a provider, or set a route vendor up",
                )
            return None, None
        try:
            entry = self.validator.provider(str(spec.provider))
            return entry.name, self.validator.sender(entry, spec.sender)
        except InvalidMessage as exc:
            raise CampaignError(exc.field, exc.reason) from None

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
            raise CampaignNotReady(
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
        routed = campaign["provider"] is None
        entry = None if routed else self.catalog.get(campaign["provider"])
        preparer = RowPreparer(
            entry, Template.parse(campaign["template"]), campaign["default_region"]
        )
        target = CampaignTarget(
            campaign["id"],
            campaign["provider"],
            campaign["sender"],
            campaign["status_callback"],
            campaign["callback_key_id"],
        )
        routing = ChunkRouter(self.validator, self._snapshot) if routed else None
        return import_rows(
            self.db,
            target,
            rows,
            preparer,
            on_reject=on_reject,
            on_progress=on_progress,
            routing=routing,
        )

    def _snapshot(self) -> Snapshot:
        return self.router.snapshot(self.clock())

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

    def live_vendor_counts(self, campaign_id: int) -> dict[str, int]:
        """Its messages per vendor, counted now: a routed campaign's split."""
        m = messages.c
        with self.db.session() as session:
            rows = session.execute(
                select(m.provider, func.count())
                .where(m.campaign_id == campaign_id)
                .group_by(m.provider)
            )
            return {str(p): int(n) for p, n in rows}

    def preview(self, campaign_id: int, samples: int = 5) -> Preview:
        campaign = self.get(campaign_id)
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
        routed = campaign["provider"] is None
        if routed:
            vendors, unroutable = self._expected_split(campaign_id)
        else:
            vendors, unroutable = [self._named_cost(campaign_id, campaign["provider"])], 0
        return Preview(
            messages=sum(n for _, n, _, _ in totals),
            segments=sum(int(s or 0) for _, _, s, _ in totals),
            by_encoding={e: n for e, n, _, _ in totals},
            max_segments=max((int(x or 0) for _, _, _, x in totals), default=0),
            samples=[PreviewMessage(mask(r), t, e, s) for r, t, e, s in rows],
            routed=routed,
            vendors=[v for v in vendors if v.messages],
            unroutable=unroutable,
        )

    def _expected_split(self, campaign_id: int) -> tuple[Sequence[VendorShare], int]:
        """A routed campaign's expected messages, segments and cost per vendor.

        Grouped in the database by route, text length and segments (what
        decides which vendors can carry a message and what it costs); each
        group is split by `expected_split` over one snapshot taken now, each
        group booking its share for the next (spill-over). The messages were
        routed when imported: this is where the same traffic would go now,
        an expectation rather than a count of what is stored.
        """
        m = messages.c
        with self.db.session() as session:
            groups = session.execute(
                select(m.route, func.length(m.text), m.segments, func.count())
                .where(m.campaign_id == campaign_id)
                .group_by(m.route, func.length(m.text), m.segments)
            ).all()
        snapshot = self._snapshot()
        tally = _Tally()
        unroutable = 0
        for route_name, length, segments, count in groups:
            route = self.catalog.routes.get(route_name) if route_name else None
            split = (
                expected_split(snapshot, route, self._fits(int(length)), int(count))
                if route is not None
                else {}
            )
            if not split:
                unroutable += int(count)
            for vendor, share in split.items():
                price = price_of(self.catalog.routes, route_name, vendor)
                tally.add(vendor, share * int(count), share * int(count) * int(segments), price)
        return tally.shares(), unroutable

    def _fits(self, length: int) -> Callable[[RouteVendor], bool]:
        return lambda choice: fits(self.validator, choice, length)

    def _named_cost(self, campaign_id: int, provider: str) -> VendorShare:
        """A named-vendor campaign: all of it to its vendor, priced per recipient's route.

        The catalog prices a vendor per route, not per vendor, and a campaign
        that names its vendor has no route: each message is priced as
        `smsdispatch report` prices an unrouted message, at the vendor's
        price on the route the number falls in (store/destinations.py), and
        unpriced where the vendor is not on that route or has no price there.
        """
        m = messages.c
        route = route_of_number(m.recipient, self.catalog.route_table).label("dest")
        with self.db.session() as session:
            groups = session.execute(
                select(route, func.count(), func.sum(m.segments))
                .where(m.campaign_id == campaign_id)
                .group_by(route)
            ).all()
        tally = _Tally()
        for route_name, count, segments in groups:
            price = price_of(self.catalog.routes, route_name, provider)
            tally.add(provider, int(count), int(segments or 0), price)
        shares = tally.shares()
        return shares[0] if shares else VendorShare(provider, 0, 0, Decimal(0))

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
        _check_window(start_at, end_at)  # the request's own times: a 422
        start_at = start_at or campaign["start_at"]
        end_at = end_at or campaign["end_at"]
        if start_at is None:
            raise CampaignNotReady("start_at", "a scheduled campaign needs a start time")
        try:
            _check_window(start_at, end_at)
        except CampaignError as exc:  # with the campaign's stored time: its state
            raise CampaignNotReady(exc.field, exc.reason) from None
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
            raise CampaignNotReady("recipients", "the campaign has no recipients yet: import some")


@dataclass
class _Tally:
    """Messages, segments and cost summed per vendor."""

    messages: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    segments: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    cost: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    unpriced: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def add(self, vendor: str, messages: float, segments: float, price: Decimal | None) -> None:
        self.messages[vendor] += messages
        self.segments[vendor] += segments
        if price is None:
            self.unpriced[vendor] += segments
        else:
            self.cost[vendor] += Decimal(str(segments)) * price

    def shares(self) -> list[VendorShare]:
        return [
            VendorShare(
                vendor,
                self.messages[vendor],
                self.segments[vendor],
                None if self.unpriced[vendor] else self.cost[vendor],
                self.unpriced[vendor],
            )
            for vendor in sorted(self.messages)
        ]


def shown_provider(provider: str | None) -> str:
    """A campaign's vendor as operators see it: its name, or "auto" when routed."""
    return provider if provider is not None else AUTO


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
