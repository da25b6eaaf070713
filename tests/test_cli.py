"""The `smsdispatch` command, run as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import redis

from smsdispatch.local.environment import credentials_from, stack_env
from smsdispatch.local.simulators import SimulatorServer
from smsdispatch.store.migrate import upgrade
from tests.settings import TEST_CREDENTIALS

SMSDISPATCH = str(Path(sys.executable).parent / "smsdispatch")


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SMSDISPATCH, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def cli_env(tmp_path: Path, simulators: SimulatorServer, redis_url: str) -> dict[str, str]:
    """The environment of a user's shell: a migrated SQLite file, test Redis."""
    database_url = f"sqlite:///{tmp_path / 'cli.db'}"
    upgrade(database_url)
    return stack_env(
        redis_url=redis_url,
        database_url=database_url,
        simulators_root=simulators.root,
        credentials=credentials_from(TEST_CREDENTIALS),
        extra={"COLUMNS": "200", "PATH": os.environ["PATH"]},
    )


def test_send_prints_the_stored_message_id(
    tmp_path: Path, simulators: SimulatorServer, redis_url: str, redis_client: redis.Redis
) -> None:
    result = run(
        ["send", "--to", "+27821230001", "--text", "hi", "--provider", "cue"],
        cli_env(tmp_path, simulators, redis_url),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"
    assert redis_client.llen("sms.cue") == 1


def test_send_rejects_a_bad_number_naming_the_field(
    tmp_path: Path, simulators: SimulatorServer, redis_url: str
) -> None:
    result = run(
        ["send", "--to", "12", "--text", "hi", "--provider", "cue"],
        cli_env(tmp_path, simulators, redis_url),
    )
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("smsdispatch: rejected: to: cannot be read as a phone number")


def test_balance_shows_the_smsbuddy_balance(
    tmp_path: Path, simulators: SimulatorServer, redis_url: str
) -> None:
    result = run(["balance"], cli_env(tmp_path, simulators, redis_url))
    assert result.returncode == 0, result.stderr
    assert "trans" in result.stdout


def test_limits_shows_each_vendor_ceiling_and_the_rate_the_limiter_allows(
    tmp_path: Path, simulators: SimulatorServer, redis_url: str
) -> None:
    result = run(["limits"], cli_env(tmp_path, simulators, redis_url))
    assert result.returncode == 0, result.stderr
    smsbuddy = next(line for line in result.stdout.splitlines() if "smsbuddy" in line)
    assert "1000/60s" in smsbuddy
    assert "990" in smsbuddy


def test_send_rejects_a_vendor_without_its_base_url_naming_the_setting(
    tmp_path: Path, simulators: SimulatorServer, redis_url: str
) -> None:
    env = cli_env(tmp_path, simulators, redis_url)
    del env["SKYCORE__BASE_URL"]
    result = run(["send", "--to", "+27821230001", "--text", "hi", "--provider", "skycore"], env)
    assert result.returncode == 2
    assert "provider: skycore cannot send: SKYCORE__BASE_URL is not set" in result.stderr
