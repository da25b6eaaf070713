"""The one Flower launcher behind `make flower`, docker compose and the demo."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from smsdispatch.local.processes import flower_process, free_port, wait_http
from smsdispatch.monitoring.flower import FlowerConfigError, flower_argv, flower_env

ROOT = Path(__file__).resolve().parent.parent


def test_flower_refuses_to_start_without_basic_auth() -> None:
    env = {k: v for k, v in os.environ.items() if k != "FLOWER_BASIC_AUTH"}
    result = subprocess.run(
        [sys.executable, "-m", "smsdispatch.monitoring.flower", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    assert "FLOWER_BASIC_AUTH" in result.stderr


@pytest.mark.parametrize("value", ["", "admin", "admin:", ":password", "a:b,c"])
def test_a_credential_without_user_or_password_is_refused(value: str) -> None:
    with pytest.raises(FlowerConfigError):
        flower_env({"FLOWER_BASIC_AUTH": value})


def test_flower_keeps_its_api_closed_and_its_password_off_the_command_line() -> None:
    env = flower_env({"FLOWER_BASIC_AUTH": "admin:s3cret-pass", "FLOWER_UNAUTHENTICATED_API": "1"})
    assert "FLOWER_UNAUTHENTICATED_API" not in env
    argv = flower_argv(port=5555, address="127.0.0.1")
    assert not any("s3cret-pass" in arg for arg in argv)
    assert "--persistent=False" in argv


def test_the_demo_and_tests_start_flower_through_the_launcher(tmp_path: Path) -> None:
    process = flower_process({}, tmp_path, 5599, "admin:pw")
    assert process.argv[1:3] == ["-m", "smsdispatch.monitoring.flower"]
    assert process.env["FLOWER_BASIC_AUTH"] == "admin:pw"
    assert not any("admin:pw" in arg for arg in process.argv)


def test_make_flower_runs_the_launcher() -> None:
    dry_run = subprocess.run(
        # --no-print-directory: under `make test` this make is nested and
        # would otherwise add "Entering/Leaving directory" lines.
        ["make", "-n", "--no-print-directory", "-o", ".venv/.installed", "flower"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert "-m smsdispatch.monitoring.flower" in dry_run.stdout.strip().splitlines()[-1]


@pytest.fixture
def flower(tmp_path: Path, redis_url: str) -> Iterator[str]:
    """Flower started by the launcher, on the test Redis; its root URL."""
    port = free_port()
    env = {**os.environ, "REDIS_URL": redis_url}
    process = flower_process(env, tmp_path, port, "admin:s3cret-pass").start()
    root = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{root}/healthcheck", timeout=60)
        yield root
    finally:
        process.stop()


def test_flower_metrics_ask_for_the_password(flower: str) -> None:
    assert httpx.get(f"{flower}/metrics").status_code == 401
    assert httpx.get(f"{flower}/metrics", auth=("admin", "wrong")).status_code == 401
    answer = httpx.get(f"{flower}/metrics", auth=("admin", "s3cret-pass"))
    assert answer.status_code == 200
    assert "# HELP flower_" in answer.text  # Flower's Prometheus text


def test_flower_pages_and_api_ask_for_the_password(flower: str) -> None:
    for path in ("/", "/tasks", "/api/workers"):
        assert httpx.get(f"{flower}{path}").status_code == 401, path
        assert httpx.get(f"{flower}{path}", auth=("admin", "s3cret-pass")).status_code == 200


def test_flower_healthcheck_is_open_on_purpose_and_says_only_ok(flower: str) -> None:
    answer = httpx.get(f"{flower}/healthcheck")
    assert answer.status_code == 200
    assert answer.text == "OK"
