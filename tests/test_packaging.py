"""The built wheel, installed alone, beside an application's own `config` and `api`.

An application laid out as cookiecutter-django lays it out has top-level
`config` (with its own `config.settings.Settings`) and `api` packages. The
wheel installs only `smsdispatch.*`, so nothing of it shadows them, nor they
it.

The wheel goes into a fresh virtual environment with `--no-deps`: the
project environment's site-packages lends it the dependencies through a
`.pth` line. A directory a `.pth` line adds has its own `.pth` files left
unread, so the project's editable install of smsdispatch stays invisible
there, and `smsdispatch` is the wheel's (the first test shows it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import redis
from sqlalchemy import select

from smsdispatch.queueing.backlog import held_ids
from smsdispatch.store.db import Database
from smsdispatch.store.models import messages
from smsdispatch.vocabulary import names
from smsdispatch.vocabulary.status import MessageStatus

# Building, installing and starting fresh interpreters takes seconds.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent

# What a checkout holds that is not source: left out of the copy built from.
NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".venv",
    ".run",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    "*.db",
)

APPLICATION_SETTINGS = '''\
class Settings:
    """The application's own settings, not smsdispatch's."""

    SITE_NAME = "the shop"
'''

# Run from the application's directory by the fresh environment's python:
# the application's own packages first, then smsdispatch's producer API.
SEND = """\
import json
import sys

import api
import config.settings
from config.settings import Settings as ShopSettings

from smsdispatch.config.catalog import load_catalog
from smsdispatch.config.settings import Settings
from smsdispatch.producer.api import Producer
from smsdispatch.producer.validation import SendRequest
from smsdispatch.store.db import Database
from smsdispatch.workers.app import create_app

settings = Settings(_env_file=None, redis_url=sys.argv[1], database_url=sys.argv[2])
celery = create_app(settings)
database = Database(settings.database_url)
producer = Producer(settings, load_catalog(settings.catalog_path), database, celery)
message_id = producer.send(SendRequest("+27821230001", "your order has shipped", "cue"))
database.dispose()
celery.close()
print(
    json.dumps(
        {
            "message_id": message_id,
            "site_name": ShopSettings.SITE_NAME,
            "config_settings": config.settings.__file__,
            "api": api.__file__,
        }
    )
)
"""


def run(
    argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion; fail the test with its stderr if it fails."""
    result = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"{argv} exited {result.returncode}:\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a copy of the checkout (a build writes build/
    and *.egg-info beside the sources)."""
    source = tmp_path_factory.mktemp("source") / "smsdispatch"
    shutil.copytree(ROOT, source, symlinks=True, ignore=NOT_SOURCE)
    wheels = tmp_path_factory.mktemp("wheels")
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    run(
        [*pip_wheel, str(source), "--wheel-dir", str(wheels)],
        cwd=source,
        env=dict(os.environ),
        timeout=120,
    )
    (built,) = wheels.glob("smsdispatch-*.whl")
    return built


@pytest.fixture(scope="module")
def environment(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel and no other installed
    project; the project environment's site-packages lends the dependencies."""
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=venv.parent, env={})
    python = command(venv, "python")
    pip_install = [sys.executable, "-m", "pip", "--python", python, "install", "-q"]
    run(
        [*pip_install, "--no-deps", "--no-index", str(wheel)],
        cwd=venv.parent,
        env=dict(os.environ),
        timeout=120,
    )
    lent = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    (site_packages(venv) / "dependencies.pth").write_text("".join(f"{d}\n" for d in lent))
    return venv


def command(venv: Path, name: str) -> str:
    """A command installed in `venv`, by its path."""
    return str(venv / "bin" / name)


def site_packages(venv: Path) -> Path:
    where = "import sysconfig; print(sysconfig.get_path('purelib'))"
    answer = run([command(venv, "python"), "-c", where], cwd=venv, env={})
    return Path(answer.stdout.strip())


@pytest.fixture(scope="module")
def application(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An application's directory with its own `config` and `api` packages."""
    app = tmp_path_factory.mktemp("shop")
    for package in ("config", "api"):
        (app / package).mkdir()
        (app / package / "__init__.py").write_text("")
    (app / "config" / "settings.py").write_text(APPLICATION_SETTINGS)
    (app / "send.py").write_text(SEND)
    return app


def shell(venv: Path, home: Path, **variables: str) -> dict[str, str]:
    """A bare environment: the fresh venv's commands and nothing of the test
    process (no PYTHONPATH, no smsdispatch settings)."""
    return {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(home), **variables}


def test_the_wheel_installs_nothing_but_the_smsdispatch_namespace(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        top_level = {name.split("/")[0] for name in archive.namelist()}
    assert {name for name in top_level if not name.endswith(".dist-info")} == {"smsdispatch"}


def test_the_fresh_environment_imports_smsdispatch_from_the_wheel(
    environment: Path, application: Path
) -> None:
    where = "import smsdispatch; print(smsdispatch.__file__)"
    answer = run(
        [command(environment, "python"), "-c", where],
        cwd=application,
        env=shell(environment, application),
    )
    assert Path(answer.stdout.strip()).is_relative_to(site_packages(environment))


def test_an_application_with_its_own_config_and_api_sends_through_the_producer(
    environment: Path, application: Path, redis_url: str, redis_client: redis.Redis
) -> None:
    database_url = f"sqlite:///{application / 'results.db'}"
    run(
        [command(environment, "smsdispatch"), "db", "upgrade"],
        cwd=application,
        env=shell(environment, application, DATABASE_URL=database_url),
    )

    answer = run(
        [command(environment, "python"), "send.py", redis_url, database_url],
        cwd=application,
        env=shell(environment, application),
    )

    sent = json.loads(answer.stdout)
    assert sent["site_name"] == "the shop"
    assert Path(sent["config_settings"]).is_relative_to(application)
    assert Path(sent["api"]).is_relative_to(application)
    database = Database(database_url)
    try:
        with database.session() as session:
            status = session.scalar(
                select(messages.c.status).where(messages.c.id == sent["message_id"])
            )
    finally:
        database.dispose()
    assert status == MessageStatus.QUEUED.value
    assert held_ids(redis_client, [names.provider_queue("cue")]) == [sent["message_id"]]


def test_the_console_script_runs_from_the_fresh_environment(
    environment: Path, application: Path
) -> None:
    answer = run(
        [command(environment, "smsdispatch"), "--help"],
        cwd=application,
        env=shell(environment, application),
    )
    assert "Distributed bulk SMS sender." in answer.stdout
