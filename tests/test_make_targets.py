"""The make targets that run smsdispatch read `.env`, as the processes do."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import httpx
import pytest

from smsdispatch.local.processes import ManagedProcess, free_port, wait_http

ROOT = Path(__file__).resolve().parent.parent
# Never rebuild the virtualenv from a test (`make setup`'s stamp counts as done).
MAKE = ["make", "--no-print-directory", "-o", ".venv/.installed"]


@pytest.mark.slow
def test_make_flower_takes_its_password_from_the_env_file(tmp_path: Path, redis_url: str) -> None:
    port = free_port()
    env_file = tmp_path / ".env"
    env_file.write_text(
        f"FLOWER_BASIC_AUTH=ops:pw-from-env-file\nFLOWER_PORT={port}\nREDIS_URL={redis_url}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWER_")}
    flower = ManagedProcess(
        "flower", [*MAKE, "flower", f"ENV_FILE={env_file}"], env, tmp_path / "flower.log", ROOT
    ).start()
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_http(url, timeout=60)
        assert httpx.get(url).status_code == 401
        assert httpx.get(url, auth=("ops", "pw-from-env-file")).status_code == 200
    finally:
        flower.stop()
    assert "pw-from-env-file" not in flower.log_tail()  # not on the command line make echoes


def test_make_flower_without_basic_auth_anywhere_refuses_to_start(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("FLOWER_PORT=1\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWER_")}
    result = subprocess.run(
        [*MAKE, "flower", f"ENV_FILE={tmp_path / '.env'}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "flower: set FLOWER_BASIC_AUTH=user:password" in result.stderr


def test_make_api_reads_the_env_file_and_the_environment_wins_over_it(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("API_PORT=1111\nAPI_HOST=10.0.0.1\n")
    env = {**os.environ, "API_PORT": "2222"}
    dry_run = subprocess.run(
        [*MAKE, "-n", "api", f"ENV_FILE={env_file}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    command = shlex.split(dry_run.stdout.strip().splitlines()[-1])
    assert command[-2:] == [".venv/bin/smsdispatch", "api"]
    # What the recipe's process sees: the same prefix, printing instead of serving.
    prefix = command[: command.index("--") + 1]
    seen = subprocess.run(
        [*prefix, "sh", "-c", "echo $API_HOST $API_PORT"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert seen.stdout.split() == ["10.0.0.1", "2222"]
