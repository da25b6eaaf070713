"""docker-compose.yml runs what the design needs (no Docker engine here: we
check the file itself against the catalog and the simulators' paths)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from smsdispatch.config.catalog import Catalog
from smsdispatch.simulators.app import BASE_PATHS
from smsdispatch.vocabulary import names

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "docker-compose.yml").read_text()))


def consumed_queues(service: dict[str, Any]) -> set[str]:
    command = service.get("command", [])
    if "worker" not in command:
        return set()
    return set(command[command.index("-Q") + 1].split(","))


def test_every_vendor_queue_has_its_own_worker(compose: dict[str, Any], catalog: Catalog) -> None:
    services = compose["services"]
    for provider in catalog.providers:
        workers = [
            n for n, s in services.items() if consumed_queues(s) == {names.provider_queue(provider)}
        ]
        assert workers == [f"worker-{provider}"], provider


def test_urgent_lanes_have_a_worker_of_their_own(compose: dict[str, Any], catalog: Catalog) -> None:
    urgent = compose["services"]["worker-urgent"]
    assert consumed_queues(urgent) == set(names.queues(catalog.providers, bulk=False))


def test_default_and_maintenance_queues_are_consumed(compose: dict[str, Any]) -> None:
    queues = set().union(*(consumed_queues(s) for s in compose["services"].values()))
    assert {names.DEFAULT_QUEUE, names.MAINTENANCE_QUEUE} <= queues


def test_beat_redis_postgres_and_simulators_run(compose: dict[str, Any]) -> None:
    assert {"beat", "redis", "postgres", "simulators", "migrate"} <= set(compose["services"])


def test_flower_refuses_to_start_without_a_password(compose: dict[str, Any]) -> None:
    flower = compose["services"]["flower"]
    assert flower["environment"]["FLOWER_BASIC_AUTH"].startswith("${FLOWER_BASIC_AUTH:?")
    # The same launcher as `make flower`: it checks the password and keeps the API closed.
    assert flower["command"][:3] == ["python", "-m", "smsdispatch.monitoring.flower"]


def test_workers_point_at_the_simulators_by_default(compose: dict[str, Any]) -> None:
    env = compose["services"]["worker-cue"]["environment"]
    for vendor, path in BASE_PATHS.items():
        assert env[f"{vendor.upper()}__BASE_URL"].endswith(f":-http://simulators:8900{path}}}")


def environment_of(service: dict[str, Any]) -> dict[str, str]:
    return dict(service.get("environment", {}))


def test_the_api_service_serves_the_http_api_after_the_migrations(
    compose: dict[str, Any],
) -> None:
    api = compose["services"]["api"]
    # Every interface inside its container; the port is published on loopback only.
    assert api["command"] == ["smsdispatch", "api", "--host", "0.0.0.0", "--port", "8000"]  # noqa: S104
    assert api["image"] == compose["services"]["worker-cue"]["image"]
    assert api["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert "127.0.0.1:8000:8000" in api["ports"]


def test_the_api_refuses_to_start_without_keys_and_a_report_secret(
    compose: dict[str, Any],
) -> None:
    env = environment_of(compose["services"]["api"])
    # Required from the environment, like FLOWER_BASIC_AUTH: no secret is baked in.
    assert env["API_KEYS"].startswith("${API_KEYS:?")
    assert env["REPORT_SECRET"].startswith("${REPORT_SECRET:?")


def test_workers_and_the_api_share_the_report_secret_and_public_url(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    senders = [name for name in services if name.startswith("worker-")]
    assert senders
    for name in [*senders, "api"]:
        env = environment_of(services[name])
        assert env["REPORT_SECRET"] == environment_of(services["api"])["REPORT_SECRET"], name
        # Workers ask vendors for reports at this address: by default, the api service.
        assert env["PUBLIC_BASE_URL"] == "${PUBLIC_BASE_URL:-http://api:8000}", name
