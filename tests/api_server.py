"""The HTTP API served over real HTTP for a test, with a client holding a valid key."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from smsdispatch.api.app import create_app
from smsdispatch.local.serve import BackgroundServer
from tests.settings import make_settings

KEY = "test-api-key-0123456789"


@contextmanager
def served_api(**settings: Any) -> Iterator[httpx.Client]:
    server = BackgroundServer(create_app(make_settings(api_keys=[KEY], **settings)))
    server.start()
    try:
        with httpx.Client(base_url=server.root, headers={"X-API-Key": KEY}) as http:
            yield http
    finally:
        server.stop()
