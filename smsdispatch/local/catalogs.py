"""Catalog files for the demo, tests and benchmarks: the default plus overrides."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomli_w

from smsdispatch.config.settings import DEFAULT_CATALOG


def merged(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `overrides` laid over it, tables merged key by key."""
    out = dict(base)
    for key, value in overrides.items():
        out[key] = merged(out.get(key, {}), value) if isinstance(value, Mapping) else value
    return out


def catalog_data(
    overrides: Mapping[str, Any] | None = None, *, lift_limits: bool = False
) -> dict[str, Any]:
    data = tomllib.loads(DEFAULT_CATALOG.read_text())
    if lift_limits:
        for entry in data["providers"].values():
            entry.pop("account_limit", None)
            entry.pop("sender_limits", None)
    return merged(data, overrides or {})


def write_catalog(
    path: Path, overrides: Mapping[str, Any] | None = None, *, lift_limits: bool = False
) -> Path:
    path.write_text(tomli_w.dumps(catalog_data(overrides, lift_limits=lift_limits)))
    return path
