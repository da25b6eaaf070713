"""What operators see of routing, and the periodic rebalance over every route."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import redis
from rich.console import Console
from typer.testing import CliRunner

from smsdispatch.cli.main import app
from smsdispatch.config.catalog import load_catalog
from smsdispatch.config.settings import DEFAULT_CATALOG, get_settings
from smsdispatch.limits import pauses
from smsdispatch.routing.health import HealthBoard
from smsdispatch.routing.view import changes_lines, route_rows, routes_table
from smsdispatch.routing.weights import WeightBoard, rebalance_routes
from smsdispatch.vocabulary.outcomes import OutcomeKind

CATALOG = load_catalog(DEFAULT_CATALOG)
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def failing(client: redis.Redis, vendor: str, answers: int = 20) -> None:
    HealthBoard(client, CATALOG.breaker).record(vendor, [OutcomeKind.RETRY] * answers)


def test_rebalance_steps_a_failing_vendor_down_on_its_routes_only(
    redis_client: redis.Redis,
) -> None:
    failing(redis_client, "cue")
    assert rebalance_routes(CATALOG, redis_client) == {"default": ["cue"]}
    weights = WeightBoard(redis_client, CATALOG.weights, CATALOG.breaker)
    assert weights.current(CATALOG.routes["default"])["cue"] == 25 - CATALOG.weights.step
    assert weights.current(CATALOG.routes["india"]) == {"smsbuddy": 100}


def test_each_vendor_shows_its_weight_breaker_failures_and_pause(
    redis_client: redis.Redis,
) -> None:
    failing(redis_client, "cue")
    rebalance_routes(CATALOG, redis_client)
    pauses.pause(redis_client, "restcomm", 60, "no credit")
    rows = {(r.route, r.vendor): r for r in route_rows(CATALOG, redis_client, NOW)}
    cue = rows[("default", "cue")]
    assert (cue.weight, cue.resting, cue.answers, cue.failure_share) == (15, 25, 20, 1.0)
    assert cue.breaker == "open (20 of 20 answers failed in 30s)"
    assert rows[("default", "restcomm")].paused
    assert rows[("india", "smsbuddy")].breaker == "closed"


def test_the_routes_table_fits_80_columns_whole(redis_client: redis.Redis) -> None:
    failing(redis_client, "cue")
    rows = route_rows(CATALOG, redis_client, NOW)
    console = Console(width=80, record=True, color_system=None)
    console.print(routes_table(rows, CATALOG.breaker.window_seconds))
    text = console.export_text()
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "25/25" in text
    assert "smsbuddy" in text


def test_weight_changes_are_listed_newest_first_with_their_reasons(
    redis_client: redis.Redis,
) -> None:
    failing(redis_client, "cue")
    rebalance_routes(CATALOG, redis_client)
    board = WeightBoard(redis_client, CATALOG.weights, CATALOG.breaker)
    [line] = changes_lines(board.changes())
    assert line.endswith("UTC default/cue 25 -> 15: breaker open: 20 of 20 answers failed in 30s")


def test_the_routes_command_shows_every_route_and_the_latest_change(
    redis_client: redis.Redis, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing(redis_client, "cue")
    rebalance_routes(CATALOG, redis_client)
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("COLUMNS", "80")
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["routes"])
    get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "india: IN" in result.output
    assert "15/25" in result.output
    assert "default/cue 25 -> 15: breaker open" in result.output
