"""A newcomer's path: README "Set-up by hand", followed in a clean directory.

Nothing but the README's steps: `.env` copied from `.env.example` with
REDIS_URL set, `smsdispatch db upgrade`, `smsdispatch simulate --env-file
.env`, a worker, beat and the API started the way `make worker`, `make beat`
and `make api` start them, each a real process in that directory reading its
`.env` (their environment holds only what a shell has: PATH, HOME, the data
directory). A first campaign of 100 recipients goes out and every message
reaches its final status from the simulators' own delivery reports, without
a single `/_sim/.../control` call (which used to be the only way to get any).

The ports are free ones rather than the defaults (8900, 8000), which another
process of this machine may hold: `--port` and `--api-url` on simulate and
API_PORT for the API, as the README names them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from smsdispatch.cli.demo import sample_numbers
from smsdispatch.config.catalog import load_catalog
from smsdispatch.config.settings import DEFAULT_CATALOG
from smsdispatch.local.processes import (
    ManagedProcess,
    PrivateRedis,
    celery_beat,
    celery_worker,
    free_port,
    wait_http,
    wait_until,
)
from smsdispatch.vocabulary import names

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
RECIPIENTS = 100
FINAL = ("delivered", "undelivered", "expired")


def shell(workdir: Path) -> dict[str, str]:
    """A newcomer's shell after `. .venv/bin/activate`: no smsdispatch setting in it."""
    keep = ("PATH", "HOME", "LANG", "PYTHONPATH")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env["XDG_DATA_HOME"] = str(workdir / "data")
    env["COLUMNS"] = "200"
    return env


def smsdispatch(workdir: Path, *args: str) -> str:
    result = subprocess.run(
        [str(BIN / "smsdispatch"), *args],
        cwd=workdir,
        env=shell(workdir),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"smsdispatch {' '.join(args)}: {result.stderr}"
    return result.stdout


def in_workdir(process: ManagedProcess, workdir: Path) -> ManagedProcess:
    process.cwd = workdir
    process.env = shell(workdir)
    return process.start()


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    """A clean directory with `.env` made as the README says: copied from
    `.env.example`, REDIS_URL pointed at this test's own redis-server."""
    directory = tmp_path / "newcomer"
    directory.mkdir()
    redis_server = PrivateRedis(tmp_path).start()
    try:
        env_file = directory / ".env"
        shutil.copy(ROOT / ".env.example", env_file)
        env_file.write_text(
            re.sub(
                r"^REDIS_URL=.*$",
                f"REDIS_URL={redis_server.url}",
                env_file.read_text(),
                flags=re.MULTILINE,
            )
        )
        yield directory
    finally:
        redis_server.stop()


def final_counts(database: Path) -> dict[str, int]:
    engine = create_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT status, count(*) FROM messages GROUP BY status"))
            return {status: n for status, n in rows}
    finally:
        engine.dispose()


def test_a_first_campaign_reaches_its_final_reports_from_the_readme_alone(workdir: Path) -> None:
    sim_port, api_port = free_port(), free_port()
    logs = workdir / "logs"
    processes: list[ManagedProcess] = []
    try:
        # 4. the database, in the data directory
        smsdispatch(workdir, "db", "upgrade")
        database = workdir / "data" / "smsdispatch" / "smsdispatch.db"
        assert database.exists()

        # 5. the simulators, writing their settings into .env
        simulate = [
            str(BIN / "smsdispatch"),
            "simulate",
            "--port",
            str(sim_port),
            "--api-url",
            f"http://127.0.0.1:{api_port}",
            "--env-file",
            ".env",
        ]
        processes.append(
            in_workdir(ManagedProcess("simulate", simulate, {}, logs / "sim.log"), workdir)
        )
        wait_http(f"http://127.0.0.1:{sim_port}/_sim/cue/stats", timeout=30)
        wait_until(
            lambda: f"127.0.0.1:{sim_port}/cue" in (workdir / ".env").read_text(), 10, ".env"
        )

        # 6-8. a worker, beat, the API
        catalog = load_catalog(DEFAULT_CATALOG)
        queues = [*names.queues(catalog.providers), names.DEFAULT_QUEUE, names.MAINTENANCE_QUEUE]
        processes.append(in_workdir(celery_worker({}, logs, queues, loglevel="INFO"), workdir))
        processes.append(in_workdir(celery_beat({}, logs), workdir))
        api = ManagedProcess(
            "api", [str(BIN / "smsdispatch"), "api", "--port", str(api_port)], {}, logs / "api.log"
        )
        processes.append(in_workdir(api, workdir))
        wait_http(f"http://127.0.0.1:{api_port}/openapi.json", timeout=30)

        # 10. a first campaign
        numbers = sample_numbers("ZA")
        csv = ["phone,name"] + [f"{next(numbers)},Guest{i}" for i in range(RECIPIENTS)]
        (workdir / "first.csv").write_text("\n".join(csv) + "\n")
        created = smsdispatch(
            workdir,
            "campaign", "create", "--name", "first", "--provider", "cue",
            "--template", "Hi {name}, welcome.", "--recipients", "first.csv",
        )  # fmt: skip
        assert f"imported {RECIPIENTS}; rejected 0" in created
        smsdispatch(workdir, "campaign", "start", "1")

        deadline = time.monotonic() + 75
        counts: dict[str, int] = {}
        while time.monotonic() < deadline:
            counts = final_counts(database)
            if sum(counts.get(s, 0) for s in FINAL) == RECIPIENTS:
                break
            time.sleep(0.5)
        else:
            tails = "\n".join(f"--- {p.name}\n{p.log_tail(15)}" for p in processes)
            pytest.fail(f"not final after 75 s: {counts}\n{tails}")

        # The simulators' documented mix: 90% delivered, the rest undelivered or expired.
        assert counts["delivered"] >= 70, counts
        stats = httpx.get(f"http://127.0.0.1:{sim_port}/_sim/cue/stats").json()
        assert stats["received"] == RECIPIENTS
        status = smsdispatch(workdir, "status")
        assert f"database {database}" in status
    finally:
        for process in reversed(processes):
            process.stop()
