"""Settings the tests run with: fixed test credentials, no `.env` file."""

from __future__ import annotations

import os
from typing import Any

from smsdispatch.config.settings import Settings

TEST_CREDENTIALS: dict[str, dict[str, str]] = {
    "cue": {"username": "cue-user", "password": "cue-pass-s3cret"},
    "messangi": {"api_key": "messangi-key-s3cret"},
    "smsbuddy": {"key": "smsbuddy-key-s3cret"},
    "restcomm": {
        "account_sid": "ACtest0000000000000000000000000000",
        "auth_token": "restcomm-token-s3cret",
    },
    "skycore": {"api_key": "skycore-key-s3cret"},
}

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
POSTGRES_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/smsdispatch_test"
)


# Skycore's endpoint has no default (its document names none). Tests that send
# point it at the simulators (`smsdispatch.simulators.app.pointed_at`); the others only
# need it set. `.invalid` never resolves.
TEST_SKYCORE_URL = "https://skycore.invalid/API"


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"redis_url": REDIS_URL, **TEST_CREDENTIALS}
    values["skycore"] = {**values["skycore"], "base_url": TEST_SKYCORE_URL}
    values.update(overrides)
    return Settings(_env_file=None, **values)
