"""Vendor name -> adapter class, and building one for a worker process."""

from __future__ import annotations

from typing import Any

import httpx

from config.catalog import Catalog
from config.settings import Settings
from providers.base import Adapter, Gate
from providers.cue import CueAdapter
from providers.messangi import MessangiAdapter
from providers.restcomm import RestcommAdapter
from providers.skycore import SkycoreAdapter
from providers.smsbuddy import SMSBuddyAdapter

ADAPTERS: dict[str, type[Adapter[Any]]] = {
    cls.name: cls
    for cls in (CueAdapter, MessangiAdapter, SMSBuddyAdapter, RestcommAdapter, SkycoreAdapter)
}


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
