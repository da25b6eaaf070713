"""The environment variables that point every process at the same stack."""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from smsdispatch.config.settings import Settings, env_name
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


# What the standalone simulators accept where the environment sets no
# credential: fixed, public values (they guard nothing but a simulator), so
# the lines `smsdispatch simulate` prints are the same from run to run.
SIMULATOR_CREDENTIALS: dict[str, dict[str, str]] = {
    "cue": {"username": "simulator", "password": "simulator-cue-password"},
    "messangi": {"api_key": "simulator-messangi-key"},
    "smsbuddy": {"key": "simulator-smsbuddy-key"},
    "restcomm": {
        "account_sid": "AC" + "51" * 16,
        "auth_token": "simulator-restcomm-token",
    },
    "skycore": {"api_key": "simulator-skycore-key"},
}
# Where `smsdispatch api` (`make api`) listens by default: where the
# simulators post delivery reports unless PUBLIC_BASE_URL or --api-url says.
DEFAULT_API_URL = "http://127.0.0.1:8000"
# URLs derived from the base URL when empty: emptied, so they follow it.
DERIVED_URLS = ("MESSANGI__BATCH_URL", "SMSBUDDY__BALANCE_URL")


@dataclass
class SimulatorSetup:
    """The settings the simulators run with, and the environment lines that
    point workers, beat and the API at them."""

    settings: Settings
    lines: dict[str, str] = dataclasses.field(default_factory=dict)
    # Secrets already set in the environment: the simulators accept them,
    # and they are not repeated (on screen or in a file).
    kept: list[str] = dataclasses.field(default_factory=list)


def simulator_setup(settings: Settings, root: str, api_url: str | None = None) -> SimulatorSetup:
    """Every vendor at `root`, with credentials: the environment's where it
    has them, `SIMULATOR_CREDENTIALS` where not; delivery reports to the API at
    `api_url` (default: PUBLIC_BASE_URL, else `DEFAULT_API_URL`) under
    REPORT_SECRET (a fresh one if none is set)."""
    setup = SimulatorSetup(settings)
    updates: dict[str, Any] = {}
    for vendor, url in base_urls(root).items():
        current = settings.vendor(vendor)
        fields: dict[str, Any] = {"base_url": url}
        setup.lines[env_name(vendor, "base_url")] = url
        for name, fallback in SIMULATOR_CREDENTIALS[vendor].items():
            value: SecretStr = getattr(current, name)
            if value.get_secret_value():
                setup.kept.append(env_name(vendor, name))
            else:
                fields[name] = SecretStr(fallback)
                setup.lines[env_name(vendor, name)] = fallback
        setup.lines[env_name(vendor, "default_sender")] = current.default_sender
        updates[vendor] = current.model_copy(update=fields)
    setup.lines.update(dict.fromkeys(DERIVED_URLS, ""))
    updates["messangi"] = updates["messangi"].model_copy(update={"batch_url": ""})
    updates["smsbuddy"] = updates["smsbuddy"].model_copy(update={"balance_url": ""})

    updates["public_base_url"] = api_url or settings.public_base_url or DEFAULT_API_URL
    setup.lines["PUBLIC_BASE_URL"] = updates["public_base_url"]
    if settings.report_secret.get_secret_value():
        setup.kept.append("REPORT_SECRET")
    else:
        fresh = secrets.token_urlsafe(32)
        updates["report_secret"] = SecretStr(fresh)
        setup.lines["REPORT_SECRET"] = fresh
    setup.settings = settings.model_copy(update=updates)
    return setup


def write_env_file(path: Path, lines: Mapping[str, str], header: str) -> None:
    """Set `lines` in the env file at `path`: a setting already there is
    replaced where it stands, the others are added at the end under `header`;
    every other line is kept. A new file is readable by its owner only (it
    holds credentials)."""
    existing = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    assignment = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=")
    out: list[str] = []
    written: set[str] = set()
    for line in existing:
        match = assignment.match(line)
        name = match.group(1) if match else ""
        if name in lines:
            if name not in written:
                out.append(f"{name}={lines[name]}")
                written.add(name)
            continue
        out.append(line)
    rest = [f"{name}={value}" for name, value in lines.items() if name not in written]
    if rest:
        out += ["", header, *rest]
    if not path.exists():
        path.touch(mode=0o600)
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
