"""Every `smsdispatch` command fails like a good CLI: one line on stderr that
names what is wrong and how to fix it, a non-zero exit, no traceback (only
with --debug).

The matrix runs each command in this process (a subprocess per case would
cost seconds each); the few tests at the end run the real `smsdispatch`
executable from another directory, where the traceback used to be 170 lines.
"""

from __future__ import annotations

import gc
import logging
import os
import re
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from smsdispatch.cli.errors import set_debug
from smsdispatch.cli.main import app
from smsdispatch.config.settings import get_settings
from smsdispatch.limits import pauses
from smsdispatch.local.processes import free_port
from smsdispatch.store.db import Database
from smsdispatch.store.migrate import alembic_config, upgrade
from tests.settings import POSTGRES_URL
from tests.test_outbox import add_rows

SMSDISPATCH = str(Path(sys.executable).parent / "smsdispatch")
NUMBER = "+27821230001"

# Every command that reads or writes the database (the servers, `api`,
# `metrics`, `simulate` and `demo`, are left out: they do not end).
DATABASE_COMMANDS: dict[str, list[str]] = {
    "status": ["status"],
    "send": ["send", "--to", NUMBER, "--text", "hi", "--provider", "cue"],
    "limits": ["limits"],
    "report": ["report", "--out", "report.png"],
    "campaign create": [
        "campaign",
        "create",
        "--name",
        "n",
        "--provider",
        "cue",
        "--template",
        "hi",
    ],
    "campaign import": ["campaign", "import", "1", "recipients.csv"],
    "campaign preview": ["campaign", "preview", "1"],
    "campaign schedule": ["campaign", "schedule", "1", "--start", "2030-01-01T10:00"],
    "campaign start": ["campaign", "start", "1"],
    "campaign pause": ["campaign", "pause", "1"],
    "campaign resume": ["campaign", "resume", "1"],
    "campaign cancel": ["campaign", "cancel", "1"],
    "campaign list": ["campaign", "list"],
    "campaign show": ["campaign", "show", "1"],
    "campaign watch": ["campaign", "watch", "1"],
    "optout add": ["optout", "add", NUMBER],
    "optout remove": ["optout", "remove", NUMBER],
    "optout import": ["optout", "import", "numbers.txt"],
    "optout count": ["optout", "count"],
    "cancel": ["cancel", "1"],
    "keys create": ["keys", "create", "n"],
    "keys list": ["keys", "list"],
    "keys revoke": ["keys", "revoke", "n"],
    "vendor resume": ["vendor", "resume", "cue"],
}
# The commands that need Redis too (pauses, the limiter, the broker).
REDIS_COMMANDS = ("status", "send", "limits", "vendor resume")


def closed_port_url(scheme: str) -> str:
    return f"{scheme}://127.0.0.1:{free_port()}/0"


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str) -> Iterator[Path]:
    """A directory that is not the project's, with no `.env`, the files some
    commands read, the data directory under the test's own, and Redis up."""
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    (workdir / "recipients.csv").write_text(f"phone\n{NUMBER}\n")
    (workdir / "numbers.txt").write_text(f"{NUMBER}\n")
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    yield workdir
    get_settings.cache_clear()


def invoke(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run the CLI as its entry point does; (exit code, stdout, stderr)."""
    get_settings.cache_clear()
    with pytest.raises(SystemExit) as exited:
        app(args=args, prog_name="smsdispatch")
    captured = capsys.readouterr()
    code = exited.value.code
    # A command's engine is left to its process's exit, which here is the
    # test's: close its connections now, quietly, not in a later test.
    del exited
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    return (code if isinstance(code, int) else 1), captured.out, captured.err


def assert_one_line(code: int, out: str, err: str, *wanted: str) -> str:
    assert code != 0
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in out + err
    for part in wanted:
        assert part in lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def empty_postgres_url() -> str:
    """A PostgreSQL database of its own with no tables (created if missing)."""
    url = make_url(POSTGRES_URL)
    empty = url.set(database=f"{url.database}_unmigrated")
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": empty.database}
            ).scalar()
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{empty.database}"'))
    finally:
        admin.dispose()
    engine = create_engine(empty)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    return empty.render_as_string(hide_password=False)


@pytest.mark.parametrize("command", DATABASE_COMMANDS)
def test_a_command_before_db_upgrade_names_the_default_database_and_the_fix(
    command: str, elsewhere: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = invoke(DATABASE_COMMANDS[command], capsys)
    where = tmp_path / "data" / "smsdispatch" / "smsdispatch.db"
    assert_one_line(code, out, err, f"database at {where}", "run smsdispatch db upgrade")
    assert not (elsewhere / "smsdispatch.db").exists()


@pytest.mark.parametrize("command", DATABASE_COMMANDS)
def test_a_command_on_an_empty_sqlite_file_says_it_has_no_tables(
    command: str,
    elsewhere: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (elsewhere / "empty.db").touch()
    monkeypatch.setenv("DATABASE_URL", "sqlite:///empty.db")
    code, out, err = invoke(DATABASE_COMMANDS[command], capsys)
    line = assert_one_line(code, out, err)
    assert line == (
        f"smsdispatch: database at {elsewhere / 'empty.db'} has no tables: "
        "run smsdispatch db upgrade"
    )
    assert code == 1


def test_a_database_at_an_older_migration_names_both_and_the_fix(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    database_url = f"sqlite:///{elsewhere / 'old.db'}"
    upgrade(database_url, "0002")
    monkeypatch.setenv("DATABASE_URL", database_url)
    code, out, err = invoke(DATABASE_COMMANDS["campaign list"], capsys)  # campaigns: 0003
    head = ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()
    line = assert_one_line(code, out, err)
    assert line == (
        f"smsdispatch: database at {elsewhere / 'old.db'} is at migration 0002, "
        f"this version needs {head}: run smsdispatch db upgrade"
    )


@pytest.mark.postgres
@pytest.mark.parametrize("command", ["status", "send", "campaign list", "optout add", "report"])
def test_a_command_on_an_unmigrated_postgres_database_says_it_has_no_tables(
    command: str,
    elsewhere: Path,
    empty_postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", empty_postgres_url)
    code, out, err = invoke(DATABASE_COMMANDS[command], capsys)
    assert_one_line(code, out, err, "_unmigrated has no tables: run smsdispatch db upgrade")


@pytest.mark.parametrize("command", ["db upgrade", "status", "campaign list", "optout count"])
def test_a_database_that_refuses_the_connection_is_named_without_its_password(
    command: str,
    elsewhere: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    port = free_port()
    monkeypatch.setenv("DATABASE_URL", f"postgresql+psycopg://ops:s3cret@127.0.0.1:{port}/sms")
    args = ["db", "upgrade"] if command == "db upgrade" else DATABASE_COMMANDS[command]
    code, out, err = invoke(args, capsys)
    line = assert_one_line(
        code, out, err, f"database at postgresql+psycopg://ops:***@127.0.0.1:{port}/sms"
    )
    assert "Connection refused" in line
    assert "start it or set DATABASE_URL" in line
    assert "s3cret" not in out + err


@pytest.mark.parametrize("command", REDIS_COMMANDS)
def test_a_command_with_redis_down_says_redis_refused_the_connection(
    command: str,
    elsewhere: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    database_url = f"sqlite:///{elsewhere / 'migrated.db'}"
    upgrade(database_url)
    monkeypatch.setenv("DATABASE_URL", database_url)
    redis_url = closed_port_url("redis")
    monkeypatch.setenv("REDIS_URL", redis_url)
    code, out, err = invoke(DATABASE_COMMANDS[command], capsys)
    line = assert_one_line(code, out, err)
    assert line == (
        f"smsdispatch: Redis at {redis_url} refused the connection: start Redis or set REDIS_URL"
    )


def test_send_with_redis_down_stores_nothing(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    database_url = f"sqlite:///{elsewhere / 'migrated.db'}"
    upgrade(database_url)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("REDIS_URL", closed_port_url("redis"))
    code, _, _ = invoke(DATABASE_COMMANDS["send"], capsys)
    assert code == 1
    engine = create_engine(database_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM messages")).scalar() == 0
    engine.dispose()


def test_commands_that_need_only_the_database_work_with_redis_down(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    database_url = f"sqlite:///{elsewhere / 'migrated.db'}"
    upgrade(database_url)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("REDIS_URL", closed_port_url("redis"))
    for command in ("optout add", "optout count", "campaign list", "report"):
        code, _, err = invoke(DATABASE_COMMANDS[command], capsys)
        assert (command, code, err) == (command, 0, "")


def test_balance_names_the_vendor_host_it_cannot_reach_without_the_path(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    monkeypatch.setenv("SMSBUDDY__BASE_URL", f"http://127.0.0.1:{port}/api/v1")
    monkeypatch.setenv("SMSBUDDY__KEY", "k3y-s3cret")
    code, out, err = invoke(["balance"], capsys)
    line = assert_one_line(code, out, err)
    assert line == (
        f"smsdispatch: http://127.0.0.1:{port} cannot be reached (ConnectError): "
        "check the vendor's *__BASE_URL"
    )


def test_a_bad_setting_is_named(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SENDING_DEADLINE_SECONDS", "soon")
    code, out, err = invoke(["status"], capsys)
    assert_one_line(code, out, err, "setting SENDING_DEADLINE_SECONDS:", "(in the environment")


def test_a_missing_file_is_named(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    database_url = f"sqlite:///{elsewhere / 'migrated.db'}"
    upgrade(database_url)
    monkeypatch.setenv("DATABASE_URL", database_url)
    code, out, err = invoke(["optout", "import", "nowhere.txt"], capsys)
    line = assert_one_line(code, out, err)
    assert line == "smsdispatch: No such file or directory: nowhere.txt"
    assert code == 2


def test_a_log_record_keeps_one_line_with_its_error_and_no_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logging.getLogger().addHandler(handler)
    try:
        set_debug(False)
        try:
            raise ConnectionError("Error 111 connecting. Connection refused.\nsecond line")
        except ConnectionError:
            logging.getLogger("t").warning("%d stored; 100%% safe", 3, exc_info=True)
    finally:
        logging.getLogger().removeHandler(handler)
    assert capsys.readouterr().err == (
        "3 stored; 100% safe (Error 111 connecting. Connection refused.)\n"
    )


# -- the real executable --------------------------------------------------------


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SMSDISPATCH, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def shell_env(tmp_path: Path, redis_url: str) -> dict[str, str]:
    """A user's shell: PATH and HOME, the data directory under the test's."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "PYTHONPATH")}
    env.update(XDG_DATA_HOME=str(tmp_path / "data"), REDIS_URL=redis_url, COLUMNS="200")
    return env


def test_status_from_another_directory_before_db_upgrade_is_one_line_and_creates_nothing(
    tmp_path: Path,
) -> None:
    env = shell_env(tmp_path, closed_port_url("redis"))
    result = run(["status"], tmp_path, env)
    assert result.returncode == 1
    assert result.stderr == (
        f"smsdispatch: database at {tmp_path / 'data' / 'smsdispatch' / 'smsdispatch.db'} "
        "does not exist: run smsdispatch db upgrade (it creates it)\n"
    )
    assert result.stdout == ""
    assert list(tmp_path.iterdir()) == []  # no empty database, no data directory


def test_every_directory_reads_the_database_db_upgrade_made_and_status_names_it(
    tmp_path: Path, redis_url: str
) -> None:
    env = shell_env(tmp_path, redis_url)
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir()
    there.mkdir()
    assert run(["db", "upgrade"], here, env).returncode == 0
    assert run(["optout", "add", NUMBER], here, env).returncode == 0
    counted = run(["optout", "count"], there, env)
    assert (counted.returncode, counted.stdout) == (0, "1\n")
    status = run(["status"], there, env)
    assert status.returncode == 0, status.stderr
    where = tmp_path / "data" / "smsdispatch" / "smsdispatch.db"
    assert f"database {where}" in status.stdout
    assert list(here.iterdir()) == []
    assert list(there.iterdir()) == []


def test_send_with_redis_down_is_one_line_and_exit_1(tmp_path: Path) -> None:
    env = shell_env(tmp_path, closed_port_url("redis"))
    assert run(["db", "upgrade"], tmp_path, env).returncode == 0
    result = run(DATABASE_COMMANDS["send"], tmp_path, env)
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1
    assert "refused the connection" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    env = shell_env(tmp_path, closed_port_url("redis"))
    result = run(["--debug", "status"], tmp_path, env)
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "no such table" in result.stderr or "unable to open database file" in result.stderr


def test_status_shows_messages_by_status_and_vendor_and_each_pause_with_its_reason(
    elsewhere: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    redis_client: redis.Redis,
) -> None:
    database_url = f"sqlite:///{elsewhere / 'migrated.db'}"
    upgrade(database_url)
    add_rows(Database(database_url), 3)  # three queued Cue messages
    monkeypatch.setenv("DATABASE_URL", database_url)
    pauses.pause(redis_client, "cue", 60, "-10: invalid credentials")
    code, out, _ = invoke(["status"], capsys)
    assert code == 0
    [queued] = [line.split() for line in out.splitlines() if line.strip().startswith("queued")]
    assert queued == ["queued", "3", "0", "0", "0", "0", "3"]
    assert re.search(r"^cue paused until \d\d:\d\d:\d\d: -10: invalid credentials$", out, re.M)
