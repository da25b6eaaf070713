"""`smsdispatch simulate`: the settings that point every vendor at it, and
delivery reports by default, so a newcomer needs neither the source nor a
control call."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
from pydantic import SecretStr

from smsdispatch.config.settings import VENDORS, Settings
from smsdispatch.local.environment import (
    DEFAULT_API_URL,
    SIMULATOR_CREDENTIALS,
    simulator_setup,
    write_env_file,
)
from smsdispatch.local.processes import free_port, wait_http
from smsdispatch.local.simulators import standalone_simulators
from smsdispatch.reports.urls import report_url
from smsdispatch.simulators.app import base_urls
from smsdispatch.simulators.common import STANDALONE_REPORT_MIX, ReportMix

ROOT = "http://127.0.0.1:8900"
SMSDISPATCH = str(Path(sys.executable).parent / "smsdispatch")
# What a shell of the test run may set that the simulators' own lines replace.
VENDOR_PREFIXES = (*(f"{v.upper()}__" for v in VENDORS), "PUBLIC_BASE_URL", "REPORT_SECRET")


def test_the_lines_point_every_vendor_at_the_simulators_with_credentials_they_accept() -> None:
    setup = simulator_setup(Settings(_env_file=None), ROOT)
    for vendor, url in base_urls(ROOT).items():
        assert setup.lines[f"{vendor.upper()}__BASE_URL"] == url
        for field, value in SIMULATOR_CREDENTIALS[vendor].items():
            assert setup.lines[f"{vendor.upper()}__{field.upper()}"] == value
            assert getattr(setup.settings.vendor(vendor), field).get_secret_value() == value
    assert setup.lines["MESSANGI__BATCH_URL"] == ""
    assert setup.lines["SMSBUDDY__BALANCE_URL"] == ""
    assert setup.kept == []


def test_the_lines_read_as_settings_leave_no_vendor_unconfigured(tmp_path: Path) -> None:
    setup = simulator_setup(Settings(_env_file=None), ROOT)
    write_env_file(tmp_path / ".env", setup.lines, "# simulators")
    settings = Settings(_env_file=tmp_path / ".env")
    assert settings.unconfigured(VENDORS) == {}
    assert settings.messangi.batch_endpoint() == f"{ROOT}/messangi/raven/v3/messages/batch"
    assert report_url(settings, "cue") == report_url(setup.settings, "cue")


def test_credentials_already_set_are_kept_and_not_repeated() -> None:
    settings = Settings(_env_file=None, cue={"username": "ops", "password": "pw-s3cret"})
    setup = simulator_setup(settings, ROOT)
    assert setup.kept == ["CUE__USERNAME", "CUE__PASSWORD"]
    assert "CUE__PASSWORD" not in setup.lines
    assert setup.settings.cue.password.get_secret_value() == "pw-s3cret"


def test_reports_go_to_the_api_at_its_default_address_under_a_fresh_secret() -> None:
    setup = simulator_setup(Settings(_env_file=None), ROOT)
    assert setup.lines["PUBLIC_BASE_URL"] == DEFAULT_API_URL
    assert len(setup.lines["REPORT_SECRET"]) >= 40
    again = simulator_setup(Settings(_env_file=None), ROOT)
    assert again.lines["REPORT_SECRET"] != setup.lines["REPORT_SECRET"]


def test_a_report_secret_and_api_address_already_set_are_kept() -> None:
    settings = Settings(
        _env_file=None, public_base_url="https://sms.example", report_secret=SecretStr("s")
    )
    setup = simulator_setup(settings, ROOT)
    assert setup.lines["PUBLIC_BASE_URL"] == "https://sms.example"
    assert "REPORT_SECRET" in setup.kept
    assert "REPORT_SECRET" not in setup.lines
    assert simulator_setup(settings, ROOT, "http://h:1").lines["PUBLIC_BASE_URL"] == "http://h:1"


def test_the_env_file_is_updated_in_place_keeping_every_other_line(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("# mine\nREDIS_URL=redis://r:1/0\nCUE__BASE_URL=https://real\nX=1\n")
    write_env_file(path, {"CUE__BASE_URL": "http://sim/cue", "NEW": "v"}, "# added")
    assert path.read_text().splitlines() == [
        "# mine",
        "REDIS_URL=redis://r:1/0",
        "CUE__BASE_URL=http://sim/cue",
        "X=1",
        "",
        "# added",
        "NEW=v",
    ]


def test_a_new_env_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    write_env_file(tmp_path / ".env", {"A": "1"}, "# x")
    assert (tmp_path / ".env").stat().st_mode & 0o077 == 0


def test_standalone_simulators_report_in_the_documented_mix_even_after_a_reset() -> None:
    settings = simulator_setup(Settings(_env_file=None), ROOT).settings
    simulators = standalone_simulators(settings)
    for vendor, simulator in simulators.items():
        simulator.reset()
        control = simulator.state.control
        assert control.reports, vendor
        assert control.report_mix == ReportMix.model_validate(STANDALONE_REPORT_MIX)
        assert control.ceiling == simulator.default_control().ceiling  # documented limits kept
    assert simulators["skycore"].state.control.postback_url == report_url(settings, "skycore")


def test_no_reports_leaves_them_off() -> None:
    simulators = standalone_simulators(Settings(_env_file=None), reports=False)
    assert not any(s.state.control.reports for s in simulators.values())


def test_simulate_prints_and_writes_the_lines_and_serves_with_reports_on(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(VENDOR_PREFIXES)}
    proc = subprocess.Popen(
        [SMSDISPATCH, "simulate", "--port", str(port), "--env-file", ".env"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/_sim/cue/stats")
        control = httpx.post(f"http://127.0.0.1:{port}/_sim/smsbuddy/control", json={}).json()
        assert control["reports"] is True
        written = Settings(_env_file=tmp_path / ".env")
        assert written.cue.base_url == f"http://127.0.0.1:{port}/cue"
        assert written.unconfigured(VENDORS) == {}
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=15)
    lines = [line for line in out.splitlines() if line and not line.startswith("#")]
    assert f"SKYCORE__BASE_URL=http://127.0.0.1:{port}/skycore/API" in lines
    assert "PUBLIC_BASE_URL=http://127.0.0.1:8000" in lines
    assert (
        "# delivery reports on: 90% delivered, 5% undelivered, 5% expired, 1 s after acceptance, "
        "posted to http://127.0.0.1:8000/reports/<vendor>/... (the API: smsdispatch api)"
    ) in out.splitlines()
    assert set(lines) <= set((tmp_path / ".env").read_text().splitlines())
    assert "Traceback" not in out
