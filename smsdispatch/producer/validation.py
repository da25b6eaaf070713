"""Checks a message must pass before anything is stored.

Each failure names the field and says why, so a caller can fix its input;
a batch reports each bad message by its index and stores the rest.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import phonenumbers

from smsdispatch.config.catalog import (
    POOL_PREFIX,
    Catalog,
    ProviderEntry,
    SenderKind,
    UnknownProviderError,
)
from smsdispatch.config.routes import NoRouteError, Route, RouteVendor
from smsdispatch.config.settings import Settings
from smsdispatch.producer.callback_urls import RefusedCallbackUrl, UrlChecker
from smsdispatch.producer.encoding import detect_encoding, segment_count
from smsdispatch.routing.router import Snapshot
from smsdispatch.vocabulary.errors import InputError
from smsdispatch.vocabulary.message import Encoding

ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 .\-_&]{1,11}$")
SHORT_CODE = re.compile(r"^\d{3,6}$")
LONG_CODE = re.compile(r"^\d{7,15}$")
MAX_REFERENCE = 128
# `provider` left out or this: the catalog's routes choose the vendor.
AUTO = "auto"


class InvalidMessage(InputError, ValueError):
    """One field of a message is wrong; `field` names it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SendRequest:
    """What a producer hands over for one message."""

    to: str
    text: str
    # None or "auto": routed by the catalog's routes (config/routes.py).
    provider: str | None = None
    sender: str | None = None
    client_reference: str | None = None
    idempotency_key: str | None = None
    # 1 for urgent messages (one-time passwords): a lane of their own, so a
    # bulk campaign on the same vendor does not hold them up.
    priority: int = 0
    # Where to POST its status changes, and the API key whose secret signs
    # them (None: the CALLBACK_SECRET setting): smsdispatch/callbacks/.
    status_callback: str | None = None
    callback_key_id: int | None = None


@dataclass(frozen=True, slots=True)
class ValidMessage:
    provider: str
    sender: str
    recipient: str  # E.164
    text: str
    encoding: Encoding
    segments: int
    client_reference: str | None
    idempotency_key: str | None
    priority: int = 0
    route: str | None = None  # the route that chose the vendor, if none was named
    status_callback: str | None = None
    callback_key_id: int | None = None


def is_routed(provider: str | None) -> bool:
    return provider is None or provider == AUTO


class Validator:
    def __init__(self, settings: Settings, catalog: Catalog, default_region: str | None = None):
        self.settings = settings
        self.catalog = catalog
        # Numbers without a country code are read in this region; None
        # requires every number to carry its '+' and country code.
        self.default_region = default_region
        # What each vendor lacks of its required settings: they do not change
        # while the process runs, so routing reads this, not the settings, per message.
        self.unconfigured = {
            name: settings.vendor(name).missing(name) for name in catalog.providers
        }
        self.check_callback_url = UrlChecker(settings.callback_allow_private)

    def validate(self, request: SendRequest, routing: Snapshot | None = None) -> ValidMessage:
        """The message as it will be stored; `routing` chooses the vendor of a
        message that names none (the producer takes one snapshot per batch)."""
        provider = request.provider
        if provider is None or provider == AUTO:
            return self.routed(request, routing)
        entry = self.provider(provider)
        sender = self.sender(entry, request.sender)
        recipient = normalize_number(request.to, self.default_region)
        check_extras(request)
        return self.valid(request, entry, sender, recipient)

    def routed(self, request: SendRequest, routing: Snapshot | None) -> ValidMessage:
        """A message that names no vendor: its route's choice, from its route's sender."""
        if request.sender is not None:
            raise InvalidMessage(
                "sender", "a routed message goes from its route's sender: name a provider too"
            )
        recipient = normalize_number(request.to, self.default_region)
        check_extras(request)
        try:
            route = self.catalog.route_table.route_for(recipient)
        except NoRouteError as exc:
            raise InvalidMessage("provider", str(exc)) from None
        if routing is None:
            raise ValueError("a routed message needs the batch's routing snapshot")
        choice = routing.choose(
            route, lambda v: self.can_carry(v, request.text), priority=request.priority == 1
        )
        if choice is None:
            raise InvalidMessage("provider", self.why_no_vendor(route, request.text))
        return self.valid(
            request, self.catalog.get(choice.vendor), choice.sender, recipient, route.name
        )

    def valid(
        self,
        request: SendRequest,
        entry: ProviderEntry,
        sender: str,
        recipient: str,
        route: str | None = None,
    ) -> ValidMessage:
        """The message as stored, once its vendor, sender and number are settled."""
        encoding, segments = self.text(entry, request.text)
        self.callback(request)
        return ValidMessage(
            entry.name,
            sender,
            recipient,
            request.text,
            encoding,
            segments,
            request.client_reference,
            request.idempotency_key,
            request.priority,
            route,
            request.status_callback,
            request.callback_key_id if request.status_callback else None,
        )

    def callback(self, request: SendRequest) -> None:
        """A status callback URL we agree to post to, and a secret to sign with."""
        if request.status_callback is None:
            return
        try:
            self.check_callback_url(request.status_callback)
        except RefusedCallbackUrl as exc:
            raise InvalidMessage("status_callback", str(exc)) from None
        if request.callback_key_id is None and not self.settings.callback_secret.get_secret_value():
            raise InvalidMessage(
                "status_callback",
                "no secret to sign callbacks with: set CALLBACK_SECRET (or use an API key "
                "made by `smsdispatch keys create`, which has its own)",
            )

    def can_carry(self, choice: RouteVendor, text: str) -> bool:
        """Whether the vendor could ever send this text: configured, and it fits."""
        return self.why_not(choice, text) is None

    def why_not(self, choice: RouteVendor, text: str) -> str | None:
        """Why a route's vendor cannot carry this text, or None.

        Routing chooses only among vendors whose every required setting is
        set here, credentials included (a producer that routes holds the
        same vendor settings as the workers, or the names of them at least):
        a vendor without its key would pause at its first message and hold
        every routed message sent its way. A message that names its vendor
        needs only the URL here (`provider`): the operator chose it.
        """
        entry = self.catalog.get(choice.vendor)
        missing = self.unconfigured[entry.name]
        if missing:
            return f"{entry.name}: {', '.join(missing)} not set"
        if len(text) > entry.max_text_chars:
            return f"{entry.name}: takes at most {entry.max_text_chars} characters"
        return None

    def why_no_vendor(self, route: Route, text: str) -> str:
        reasons = [why for v in route.vendors if (why := self.why_not(v, text))]
        return f"no vendor of route {route.name!r} can carry it ({'; '.join(reasons)})"

    def provider(self, name: str) -> ProviderEntry:
        try:
            entry = self.catalog.get(name)
        except UnknownProviderError as exc:
            raise InvalidMessage("provider", str(exc)) from None
        # Without its endpoint a vendor can never send: refuse here, with the
        # fix, rather than store a message a worker could only hold. Only the
        # URL is checked: credentials are the workers' (a producer need not
        # hold vendor secrets), and a worker without them says so by pausing.
        missing = self.settings.vendor(entry.name).missing(entry.name, ("base_url",))
        if missing:
            raise InvalidMessage("provider", f"{entry.name} cannot send: {missing[0]} is not set")
        return entry

    def sender(self, entry: ProviderEntry, sender: str | None) -> str:
        default = self.settings.vendor(entry.name).default_sender
        sender = sender or default
        if entry.pool(sender) is not None:
            return sender  # a catalog pool: its members were checked when it was loaded
        if sender.startswith(POOL_PREFIX):
            raise InvalidMessage(
                "sender",
                f"{sender!r}: {entry.name} has no such pool "
                f"(pools: {', '.join(entry.pools) or 'none'})",
            )
        known = entry.sender(sender)
        if known is None and sender != default:
            ids = ", ".join(s.id for s in entry.senders) or "none"
            raise InvalidMessage(
                "sender", f"{sender!r} is not a sender of {entry.name} (catalog senders: {ids})"
            )
        kind = known.kind if known else SenderKind.guess(sender)
        check_sender_format(sender, kind)
        return sender

    def text(self, entry: ProviderEntry, text: str) -> tuple[Encoding, int]:
        return check_text(entry, text)


def check_extras(request: SendRequest) -> None:
    """The fields every message checks alike, whoever chooses its vendor."""
    for name in ("client_reference", "idempotency_key"):
        value = getattr(request, name)
        if value is not None and not 0 < len(value) <= MAX_REFERENCE:
            raise InvalidMessage(name, f"must be 1 to {MAX_REFERENCE} characters")
    if request.priority not in (0, 1):
        raise InvalidMessage("priority", "is 0 (bulk) or 1 (urgent)")


def check_text(entry: ProviderEntry, text: str) -> tuple[Encoding, int]:
    """The text's encoding and segments, or `InvalidMessage` if the vendor refuses it."""
    if not text or not text.strip():
        raise InvalidMessage("text", "is empty")
    if len(text) > entry.max_text_chars:
        raise InvalidMessage(
            "text",
            f"is {len(text)} characters; {entry.name} takes at most {entry.max_text_chars}",
        )
    encoding = detect_encoding(text)
    return encoding, segment_count(text, encoding)


def normalize_number(raw: str, default_region: str | None) -> str:
    """E.164 with '+', or `InvalidMessage` naming the recipient field."""
    candidate = raw.strip()
    if candidate.startswith("00"):
        candidate = "+" + candidate[2:]
    if already_e164(candidate):
        return candidate
    try:
        number = phonenumbers.parse(candidate, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidMessage("to", f"cannot be read as a phone number ({exc._msg})") from None
    if not is_valid(number):
        raise InvalidMessage("to", "is not a valid phone number for its country")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


STRICT_E164 = re.compile(r"\+[1-9]\d{6,14}")


def already_e164(candidate: str) -> bool:
    """Whether `candidate` is a valid number written exactly in E.164.

    The answer `phonenumbers.parse` + `is_valid_number` would give, at a third
    of the cost, for the case a campaign list is mostly made of: "+" and
    digits. `parse` changes such a number only by stripping a national prefix
    ("+44 0...") or keeping leading zeros; those cases answer False here and
    go through `parse`, as does anything not strictly "+digits".
    """
    if not STRICT_E164.fullmatch(candidate):
        return False
    digits = candidate[1:]
    for length in (1, 2, 3):
        code = int(digits[:length])
        if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return False
    national = digits[length:]
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(
        phonenumbers.region_code_for_country_code(code)
    )
    if metadata is None or not national or national.startswith("0"):
        return False
    prefix = metadata.national_prefix_for_parsing
    if prefix:
        found = _pattern(prefix).match(national)
        if found is not None and (found.end() > 0 or any(g is not None for g in found.groups())):
            return False
    return is_valid(phonenumbers.PhoneNumber(country_code=code, national_number=int(national)))


@functools.lru_cache(maxsize=512)
def _pattern(source: str) -> re.Pattern[str]:
    return re.compile(source)


def is_valid(number: phonenumbers.PhoneNumber) -> bool:
    """`phonenumbers.is_valid_number`, about four times faster for +1 numbers.

    +1 is shared by 25 regions and `is_valid_number` tries each in turn;
    trying the country code's main region first gives the same answer (a
    number valid for one of its regions is valid) at a fraction of the cost,
    which matters when importing a million recipients.
    """
    main = phonenumbers.region_code_for_country_code(number.country_code or 0)
    return bool(
        phonenumbers.is_valid_number_for_region(number, main)
        or phonenumbers.is_valid_number(number)
    )


def check_sender_format(sender: str, kind: SenderKind) -> None:
    if kind is SenderKind.ALPHANUMERIC and not ALPHANUMERIC_SENDER.match(sender):
        raise InvalidMessage(
            "sender",
            f"{sender!r}: an alphanumeric sender is 1 to 11 letters, "
            "digits or spaces, with at least one letter",
        )
    if kind is SenderKind.SHORT_CODE and not SHORT_CODE.match(sender):
        raise InvalidMessage("sender", f"{sender!r}: a short code is 3 to 6 digits")
    if kind is SenderKind.LONG_CODE and not LONG_CODE.match(sender):
        raise InvalidMessage("sender", f"{sender!r}: a long code is 7 to 15 digits")
