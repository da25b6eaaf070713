"""The catalog's rules, written into the OpenAPI document as JSON Schema.

Which vendors a message may name, their senders and text lengths, the time
zones and regions a campaign may name: none of it is known until the catalog
and the settings are read, so the models in schemas.py carry a mark
(`x-rules: message`) and api/contract.py replaces it with what this module
builds when the app is created. The producer and the campaign service still
check every rule (they serve the CLI and Python callers too); the document
only says, truthfully, what they will accept.

Rules JSON Schema cannot state are said in words (`description`): a
campaign's end after its start; a routed message's text must fit a vendor
of the route its number takes (the schema gives the smallest such limit).
"""

from __future__ import annotations

import zoneinfo
from functools import cache
from typing import Any

import phonenumbers

from smsdispatch.api.schemas import PHONE_FORMAT
from smsdispatch.config.catalog import POOL_PREFIX, Catalog, ProviderEntry
from smsdispatch.config.settings import Settings
from smsdispatch.producer.validation import AUTO, MAX_REFERENCE

Schema = dict[str, Any]
# Text that is not only white space (Python's `str.isspace`, as the producer reads it).
NOT_BLANK = r"\S"


def vendor_names(settings: Settings, catalog: Catalog) -> list[str]:
    """The vendors a message may name here: the producer refuses one without its base URL."""
    return [n for n in catalog.providers if not settings.vendor(n).missing(n, ("base_url",))]


def provider_names(settings: Settings, catalog: Catalog, *, routed: bool = True) -> list[str]:
    """What `provider` may be: a vendor named, or "auto" while routing can choose one."""
    auto = [AUTO] if routed and routable(settings, catalog) else []
    return [*vendor_names(settings, catalog), *auto]


def routable(settings: Settings, catalog: Catalog) -> list[ProviderEntry]:
    """The vendors routing may choose: every required setting is set, credentials too."""
    return [catalog.get(n) for n in catalog.providers if not settings.vendor(n).missing(n)]


def rules(settings: Settings, catalog: Catalog) -> dict[str, Schema]:
    """Each mark's schema: what a marked model's schema is combined with."""
    return {
        "message": message_rules(settings, catalog),
        "campaign": campaign_rules(settings, catalog),
        "schedule": {"properties": {"timezone": nullable(time_zones())}},
    }


def message_rules(settings: Settings, catalog: Catalog) -> Schema:
    """One message: a named vendor's senders and text length, or routed."""
    branches = [
        vendor_branch(settings, catalog.get(name), with_text=True)
        for name in vendor_names(settings, catalog)
    ]
    routed = routed_branch(settings, catalog)
    if routed is not None:
        limits = routed_text_limits(settings, catalog)
        text: Schema = {"maxLength": min(limits)} if limits else {"not": {}}
        routed["properties"]["text"] = text
        branches.append(routed)
    reference = {"anyOf": [{"type": "string", "minLength": 1, "maxLength": MAX_REFERENCE},
                           {"type": "null"}]}  # fmt: skip
    return {
        "properties": {
            "provider": nullable(provider_names(settings, catalog)),
            "to": {"type": "string", "format": PHONE_FORMAT},
            "text": {"type": "string", "pattern": NOT_BLANK},
            "client_reference": reference,
            "idempotency_key": reference,
        },
        "anyOf": branches or [{"not": {}}],
    }


def campaign_rules(settings: Settings, catalog: Catalog) -> Schema:
    """A campaign: its vendor and sender (or routed), a template, a zone, a region."""
    branches = [
        vendor_branch(settings, catalog.get(name), with_text=False)
        for name in vendor_names(settings, catalog)
    ]
    routed = routed_branch(settings, catalog)
    if routed is not None and catalog.routes:
        branches.append(routed)
    return {
        "properties": {
            "provider": nullable(provider_names(settings, catalog, routed=bool(catalog.routes))),
            "name": {"type": "string", "pattern": NOT_BLANK},
            "template": {"type": "string", "pattern": TEMPLATE},
            "timezone": {"enum": time_zones()},
            "default_region": nullable(regions()),
        },
        "anyOf": branches or [{"not": {}}],
    }


# A template: text with {placeholders} (identifiers), {{ and }} for braces,
# and something that is not white space (campaigns/templates.py).
TEMPLATE = r"^(?=[\s\S]*[^\s])(?:[^{}]|\{\{|\}\}|\{[A-Za-z_][A-Za-z0-9_]*\})*$"


def vendor_branch(settings: Settings, entry: ProviderEntry, *, with_text: bool) -> Schema:
    """A body naming this vendor: one of its senders (or its default sender)."""
    default = settings.vendor(entry.name).default_sender
    senders = [s.id for s in entry.senders] + [POOL_PREFIX + p for p in entry.pools]
    if default and default not in senders:
        senders.append(default)
    sender: Schema = {"enum": [*senders, *([None, ""] if default else [])]}
    branch: Schema = {
        "properties": {"provider": {"const": entry.name}, "sender": sender},
        "required": ["provider", *([] if default else ["sender"])],
    }
    if with_text:
        branch["properties"]["text"] = {"maxLength": entry.max_text_chars}
    return branch


def routed_branch(settings: Settings, catalog: Catalog) -> Schema | None:
    """A body naming no vendor (or "auto"): no sender; None when routing has no vendor."""
    if not routable(settings, catalog):
        return None
    return {"properties": {"provider": {"enum": [AUTO, None]}, "sender": {"type": "null"}}}


def routed_text_limits(settings: Settings, catalog: Catalog) -> list[int]:
    """Per route, the longest text one of its usable vendors takes."""
    usable = {e.name: e.max_text_chars for e in routable(settings, catalog)}
    limits = []
    for route in catalog.routes.values():
        lengths = [usable[v.vendor] for v in route.vendors if v.vendor in usable]
        if lengths:
            limits.append(max(lengths))
    return limits


def nullable(values: list[str]) -> Schema:
    return {"anyOf": [{"enum": values}, {"type": "null"}]}


@cache
def time_zones() -> list[str]:
    return sorted(zoneinfo.available_timezones())


@cache
def regions() -> list[str]:
    """Region codes, as written and in lower case (the service upper-cases them)."""
    codes = sorted(phonenumbers.SUPPORTED_REGIONS)
    return codes + [c.lower() for c in codes]
