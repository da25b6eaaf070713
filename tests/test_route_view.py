"""What operators see of routing, and the periodic rebalance over every route."""

from __future__ import annotations

import random
import time
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
from smsdispatch.routing.router import Router
from smsdispatch.routing.view import changes_lines, route_rows, routes_table
from smsdispatch.routing.weights import WeightBoard, rebalance_routes
from smsdispatch.vocabulary.outcomes import OutcomeKind
from tests.api_server import served_api

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


# -- pins and drains ------------------------------------------------------------


def test_a_drained_vendor_gets_no_routed_message(redis_client: redis.Redis) -> None:
    board = WeightBoard(redis_client, CATALOG.weights, CATALOG.breaker)
    route = CATALOG.routes["default"]
    board.pin(route, "cue", 0, 60, "maintenance window", "ops")  # healthy, breaker closed
    snapshot = Router(CATALOG, redis_client, random.Random(1)).snapshot(NOW)
    chosen = {snapshot.choose(route, lambda _: True) for _ in range(400)}
    assert {c.vendor for c in chosen if c} == {"messangi", "restcomm", "skycore"}
    assert board.changes()[0].reason == "drained for 60s by ops: maintenance window"


def test_health_does_not_move_a_pinned_vendor(redis_client: redis.Redis) -> None:
    board = WeightBoard(redis_client, CATALOG.weights, CATALOG.breaker)
    route = CATALOG.routes["default"]
    board.pin(route, "cue", 40, 60, "contract", "ops")
    failing(redis_client, "cue")
    assert rebalance_routes(CATALOG, redis_client) == {}
    assert board.current(route)["cue"] == 40


def test_when_nobody_can_send_a_drained_vendor_does_not_take_the_waiting_messages(
    redis_client: redis.Redis,
) -> None:
    board = WeightBoard(redis_client, CATALOG.weights, CATALOG.breaker)
    route = CATALOG.routes["default"]
    board.pin(route, "cue", 0, 60, "maintenance window", "ops")
    for vendor in ("messangi", "restcomm", "skycore"):
        pauses.pause(redis_client, vendor, 60, "no credit")
    snapshot = Router(CATALOG, redis_client, random.Random(1)).snapshot(NOW)
    chosen = snapshot.choose(route, lambda _: True)
    assert chosen is not None
    assert chosen.vendor != "cue"


def test_a_pin_holds_its_weight_until_it_ends_or_is_lifted(redis_client: redis.Redis) -> None:
    board = WeightBoard(redis_client, CATALOG.weights, CATALOG.breaker)
    route = CATALOG.routes["default"]
    board.pin(route, "skycore", 80, 0.3, "new contract", "ops")
    assert board.current(route)["skycore"] == 80
    time.sleep(0.35)
    assert board.current(route)["skycore"] == 25
    board.pin(route, "skycore", 80, 60, "new contract", "ops")
    assert board.unpin(route, "skycore", "ops")
    assert board.current(route)["skycore"] == 25
    assert not board.unpin(route, "skycore", "ops")


def test_routes_are_pinned_drained_and_unpinned_over_the_cli(
    redis_client: redis.Redis, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("COLUMNS", "80")
    get_settings.cache_clear()
    runner = CliRunner()
    drained = runner.invoke(app, ["routes", "drain", "default", "cue", "--for", "600"])
    shown = runner.invoke(app, ["routes"])
    unpinned = runner.invoke(app, ["routes", "unpin", "default", "cue"])
    unknown = runner.invoke(app, ["routes", "pin", "default", "smsbuddy", "--weight", "5"])
    get_settings.cache_clear()
    assert drained.exit_code == 0, drained.output
    assert "0/25 pin" in shown.output
    assert unpinned.exit_code == 0, unpinned.output
    assert unknown.exit_code == 2
    assert "route 'default' has no vendor 'smsbuddy'" in unknown.output


def test_routes_are_listed_and_a_vendor_pinned_and_unpinned_over_the_api(
    database_url: str, redis_client: redis.Redis, redis_url: str
) -> None:
    with served_api(database_url=database_url, redis_url=redis_url) as http:
        pinned = http.post(
            "/v1/routes/default/vendors/restcomm/pin", json={"weight": 60, "reason": "cheaper"}
        )
        listed = http.get("/v1/routes").json()
        lifted = http.delete("/v1/routes/default/vendors/restcomm/pin")
        missing = http.post("/v1/routes/nowhere/vendors/cue/pin", json={"weight": 1})
    assert pinned.status_code == 200, pinned.text
    assert (pinned.json()["weight"], pinned.json()["pinned"]) == (60, True)
    assert {(r["route"], r["vendor"]) for r in listed} >= {("india", "smsbuddy")}
    assert (lifted.json()["weight"], lifted.json()["pinned"]) == (25, False)
    assert missing.status_code == 404
    changes = WeightBoard(redis_client, CATALOG.weights, CATALOG.breaker).changes()
    assert changes[1].reason.startswith("pinned at 60 for 3600s by ")


def test_a_vendor_health_took_to_weight_zero_is_probed_and_drifts_back_when_it_recovers(
    redis_client: redis.Redis,
) -> None:
    quick = CATALOG.model_copy(
        update={
            "weights": CATALOG.weights.model_copy(
                update={"step": 25, "cooldown_seconds": 0, "recover_after_seconds": 0.3}
            ),
            "breaker": CATALOG.breaker.model_copy(
                update={
                    "cooldown_seconds": 0.2,
                    "probe_interval_seconds": 0.05,
                    "probes_to_close": 1,
                    "window_seconds": 1,
                    "bucket_seconds": 1,
                }
            ),
        }
    )
    route = quick.routes["default"]
    health = HealthBoard(redis_client, quick.breaker)
    weights = WeightBoard(redis_client, quick.weights, quick.breaker)
    health.record("cue", [OutcomeKind.RETRY] * quick.breaker.min_volume)
    rebalance_routes(quick, redis_client)
    assert weights.current(route)["cue"] == 0
    time.sleep(0.25)  # the breaker's cooldown: it is half open now
    snapshot = Router(quick, redis_client, random.Random(1)).snapshot(NOW)
    probes = [c for _ in range(50) if (c := snapshot.choose(route, lambda _: True))]
    assert [c.vendor for c in probes].count("cue") == 1  # one probe, though its weight is 0
    health.record("cue", [OutcomeKind.ACCEPTED])  # the probe went through: closed
    time.sleep(2.1)  # the failures leave the 1 s window; a quiet spell passes
    rebalance_routes(quick, redis_client)
    assert weights.current(route)["cue"] == 25
