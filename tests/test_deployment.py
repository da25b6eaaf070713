"""docker-compose.yml runs what the design needs (no Docker engine here: we
check the file itself against the catalog and the simulators' paths)."""

from __future__ import annotations

import json
import re
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


def test_status_callbacks_have_a_worker_of_their_own(compose: dict[str, Any]) -> None:
    serving = [n for n, s in compose["services"].items() if "callbacks" in consumed_queues(s)]
    assert serving == ["worker-callbacks"]


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


# -- Prometheus and Grafana with the dashboard ---------------------------------------


def mounts(service: dict[str, Any]) -> dict[str, Path]:
    """A service's bind mounts of this repository: target in the container -> file here."""
    found = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith("./"):
            found[target] = ROOT / source
    return found


def read_yaml(path: Path) -> dict[str, Any]:
    return dict(yaml.safe_load(path.read_text()))


@pytest.mark.parametrize("name", ["prometheus", "grafana"])
def test_prometheus_and_grafana_run_pinned_images_on_loopback_after_the_api(
    compose: dict[str, Any], name: str
) -> None:
    service = compose["services"][name]
    # A release, not a moving tag such as "latest" or a major version only.
    assert re.fullmatch(r"v?\d+\.\d+\.\d+", service["image"].rpartition(":")[2])
    assert all(port.startswith("127.0.0.1:") for port in service["ports"])
    upstream = {"prometheus": "api", "grafana": "prometheus"}[name]
    assert upstream in service["depends_on"]


@pytest.mark.parametrize("name", ["prometheus", "grafana"])
def test_the_files_prometheus_and_grafana_mount_are_in_the_repository(
    compose: dict[str, Any], name: str
) -> None:
    found = mounts(compose["services"][name])
    assert found
    for target, source in found.items():
        assert source.exists(), f"{name}: {source} (mounted at {target})"


def test_grafana_asks_for_a_password_and_lets_no_one_in_anonymously(
    compose: dict[str, Any],
) -> None:
    env = environment_of(compose["services"]["grafana"])
    assert env["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert env["GF_USERS_ALLOW_SIGN_UP"] == "false"


def test_prometheus_scrapes_the_api_service_with_the_metrics_token(
    compose: dict[str, Any],
) -> None:
    prometheus = compose["services"]["prometheus"]
    config = read_yaml(mounts(prometheus)["/etc/prometheus/prometheus.yml"])
    (job,) = config["scrape_configs"]
    api_port = compose["services"]["api"]["command"][-1]
    assert job["static_configs"] == [{"targets": [f"api:{api_port}"]}]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    # The API wants `Authorization: Bearer <METRICS_TOKEN>` (monitoring/web.py):
    # the token is a compose secret made from the same variable the API reads.
    assert job["authorization"]["type"] == "Bearer"
    (secret,) = prometheus["secrets"]
    assert job["authorization"]["credentials_file"] == f"/run/secrets/{secret}"
    assert compose["secrets"][secret] == {"environment": "METRICS_TOKEN"}
    api_env = environment_of(compose["services"]["api"])
    assert api_env["METRICS_TOKEN"].startswith("${METRICS_TOKEN:?")


def test_grafana_is_provisioned_with_prometheus_and_the_dashboard(
    compose: dict[str, Any],
) -> None:
    grafana = compose["services"]["grafana"]
    found = mounts(grafana)
    provisioning = found["/etc/grafana/provisioning"]
    (source,) = read_yaml(provisioning / "datasources" / "prometheus.yml")["datasources"]
    prometheus_port = compose["services"]["prometheus"]["ports"][0].rsplit(":", 1)[1]
    assert source["type"] == "prometheus"
    assert source["url"] == f"http://prometheus:{prometheus_port}"
    (provider,) = read_yaml(provisioning / "dashboards" / "smsdispatch.yml")["providers"]
    dashboards = found[provider["options"]["path"]]
    dashboard = json.loads((dashboards / "smsdispatch.json").read_text())
    # The dashboard's datasource variable starts on the provisioned source.
    (variable,) = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert variable["current"]["value"] == source["uid"]
