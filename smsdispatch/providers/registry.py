"""Vendor name -> adapter class, and building one for a worker process."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpx

from smsdispatch.config.catalog import Catalog
from smsdispatch.config.settings import Settings
from smsdispatch.providers.base import Adapter, Gate
from smsdispatch.providers.cue import CueAdapter
from smsdispatch.providers.messangi import MessangiAdapter
from smsdispatch.providers.restcomm import RestcommAdapter
from smsdispatch.providers.skycore import SkycoreAdapter
from smsdispatch.providers.smsbuddy import SMSBuddyAdapter

ADAPTERS: dict[str, type[Adapter[Any]]] = {
    cls.name: cls
    for cls in (CueAdapter, MessangiAdapter, SMSBuddyAdapter, RestcommAdapter, SkycoreAdapter)
}


def searchable(providers: Iterable[str]) -> list[str]:
    """Vendors that can be asked whether they took a message we lost track of."""
    return [p for p in providers if ADAPTERS[p].supports_sent_search]


def build_adapter(
    vendor: str,
    settings: Settings,
    client: httpx.AsyncClient,
    catalog: Catalog,
    *,
    report_url: str | None = None,
    gate: Gate | None = None,
) -> Adapter[Any]:
    entry = catalog.get(vendor)
    vendor_settings = getattr(settings, vendor)
    return ADAPTERS[vendor](
        vendor_settings,
        client,
        entry,
        report_url=report_url,
        gate=gate,
        total_timeout=settings.http_total_timeout_seconds,
    )
