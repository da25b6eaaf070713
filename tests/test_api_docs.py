"""/docs (Swagger UI) and /redoc work without internet: every script, style
and icon they load is served by the API itself."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.api_server import served_api

# What a page loads: script and icon (src, href), the spec (url:, spec-url).
ASSET = re.compile(r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']|url:\s*["']([^"']+)["']""")


def loaded_urls(html: str) -> list[str]:
    return [a or b for a, b in ASSET.findall(html)]


@pytest.fixture
def http(database_url: str) -> Iterator[httpx.Client]:
    """The API, asked without a key: the docs are open like the contract."""
    with served_api(database_url=database_url) as client:
        yield client


@pytest.mark.parametrize(
    ("page", "scripts"),
    [
        ("/docs", ["/docs/assets/swagger-ui-bundle.js"]),
        ("/redoc", ["/docs/assets/redoc.standalone.js"]),
    ],
)
def test_a_docs_page_loads_only_assets_the_api_serves(
    http: httpx.Client, page: str, scripts: list[str]
) -> None:
    answer = http.get(page, headers={"X-API-Key": ""})
    assert answer.status_code == 200
    assert "http://" not in answer.text
    assert "https://" not in answer.text
    urls = loaded_urls(answer.text)
    assert set(scripts) <= set(urls)
    assert "/openapi.json" in urls
    for url in urls:
        assert url.startswith("/"), url  # nothing from another host
        asset = http.get(url, headers={"X-API-Key": ""})
        assert asset.status_code == 200, url
        if url.endswith(".js"):
            assert "javascript" in asset.headers["content-type"]
            assert len(asset.content) > 100_000  # the bundle itself, not a stub
