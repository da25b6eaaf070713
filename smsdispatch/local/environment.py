"""The environment variables that point every process at the same stack."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from typing import Any

from smsdispatch.config.settings import Settings
from smsdispatch.simulators.app import base_urls

VENDOR_SECRETS = {
    "cue": ("USERNAME", "PASSWORD"),
    "messangi": ("API_KEY",),
    "smsbuddy": ("KEY",),
    "restcomm": ("ACCOUNT_SID", "AUTH_TOKEN"),
    "skycore": ("API_KEY",),
}


def demo_credentials() -> dict[str, str]:
    """Fresh random credentials: the simulators and workers share them."""
    values = {}
    for vendor, fields in VENDOR_SECRETS.items():
        for field in fields:
            prefix = "AC" if field == "ACCOUNT_SID" else ""
            values[f"{vendor.upper()}__{field}"] = prefix + secrets.token_hex(16)
    return values


def credentials_from(settings_credentials: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    return {
        f"{vendor.upper()}__{field.upper()}": value
        for vendor, fields in settings_credentials.items()
        for field, value in fields.items()
    }


def stack_env(
    *,
    redis_url: str,
    database_url: str,
    simulators_root: str | None,
    credentials: Mapping[str, str],
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    env = dict(os.environ)
    env.update(credentials)
    env.update({"REDIS_URL": redis_url, "DATABASE_URL": database_url})
    if simulators_root:
        for vendor, url in base_urls(simulators_root).items():
            env[f"{vendor.upper()}__BASE_URL"] = url
    env.update(extra or {})
    return env


def settings_from_env(env: Mapping[str, str]) -> dict[str, Any]:
    """The Settings a subprocess started with `env` reads, built in this process
    (pydantic-settings reads os.environ, so it is swapped for the call)."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        return Settings(_env_file=None).model_dump()
    finally:
        os.environ.clear()
        os.environ.update(saved)
