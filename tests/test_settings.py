"""Vendor settings: every one documented, the required ones said out loud."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

import smsdispatch.workers.app
from smsdispatch.config.settings import (
    VENDORS,
    MessangiSettings,
    Settings,
    SMSBuddySettings,
    VendorSettings,
    data_directory,
    env_name,
    warn_unconfigured,
)
from tests.settings import TEST_CREDENTIALS, make_settings

ROOT = Path(__file__).resolve().parent.parent


def vendor_setting_names() -> list[str]:
    """`CUE__BASE_URL`, ...: every field of every vendor settings model."""
    return [
        env_name(vendor, field)
        for vendor in VENDORS
        for field in type(Settings.model_fields[vendor].default).model_fields
    ]


def test_every_vendor_has_a_settings_model() -> None:
    for vendor in VENDORS:
        assert isinstance(Settings.model_fields[vendor].default, VendorSettings), vendor


@pytest.mark.parametrize("name", vendor_setting_names())
def test_every_vendor_setting_is_in_env_example(name: str) -> None:
    assigned = re.findall(r"^([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.MULTILINE)
    assert name in assigned


def setting_names() -> list[str]:
    """`REDIS_URL`, ...: every setting that is not a vendor's."""
    return [name.upper() for name in Settings.model_fields if name not in VENDORS]


@pytest.mark.parametrize("name", setting_names())
def test_every_setting_is_in_env_example_set_or_with_its_default(name: str) -> None:
    """An operator finds every setting in .env.example; the tuning ones are
    commented out, so a default changed in the code is not pinned by a copy."""
    named = re.findall(r"^(?:# )?([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.MULTILINE)
    assert name in named


def test_env_example_sets_what_an_operator_must_decide() -> None:
    assigned = re.findall(r"^([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.MULTILINE)
    for name in ("REDIS_URL", "API_KEYS", "PUBLIC_BASE_URL", "REPORT_SECRET", "FLOWER_BASIC_AUTH"):
        assert name in assigned


@pytest.mark.parametrize("name", vendor_setting_names())
def test_every_vendor_setting_is_in_the_readme(name: str) -> None:
    assert f"`{name}`" in (ROOT / "README.md").read_text()


def test_env_example_is_read_as_settings_where_skycore_is_the_one_vendor_without_a_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in vendor_setting_names():
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=ROOT / ".env.example")
    assert settings.unconfigured(VENDORS, ["base_url"]) == {"skycore": ["SKYCORE__BASE_URL"]}
    assert (
        settings.messangi.batch_endpoint() == "https://elastic.messangi.me/raven/v3/messages/batch"
    )


def test_missing_names_the_required_settings_left_empty() -> None:
    settings = make_settings(skycore={}, cue={"username": "u"})
    assert settings.unconfigured(VENDORS) == {
        "cue": ["CUE__PASSWORD"],
        "skycore": ["SKYCORE__BASE_URL", "SKYCORE__API_KEY"],
    }


def test_start_up_warns_once_per_vendor_that_cannot_send(caplog: pytest.LogCaptureFixture) -> None:
    settings = make_settings(skycore=TEST_CREDENTIALS["skycore"], cue={})
    with caplog.at_level(logging.WARNING):
        warn_unconfigured(settings, ["cue", "skycore", "messangi"], logging.getLogger("t"))
    assert [r.getMessage() for r in caplog.records] == [
        "cue is in the provider catalog but CUE__USERNAME, CUE__PASSWORD are not set: "
        "workers hold its messages, pausing the vendor, until that is fixed",
        "skycore is in the provider catalog but SKYCORE__BASE_URL is not set: "
        "new messages for it are refused, and workers hold any they claim",
    ]


def test_a_worker_says_at_start_up_which_vendor_has_no_base_url(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(skycore=TEST_CREDENTIALS["skycore"])
    monkeypatch.setattr(smsdispatch.workers.app, "get_settings", lambda: settings)
    with caplog.at_level(logging.WARNING, logger="smsdispatch.workers.app"):
        smsdispatch.workers.app._say_which_vendors_cannot_send()
    [line] = [r.getMessage() for r in caplog.records if r.name == "smsdispatch.workers.app"]
    assert line.startswith("skycore is in the provider catalog but SKYCORE__BASE_URL is not set")


def test_messangi_batch_url_defaults_to_our_reading_of_the_document() -> None:
    messangi = MessangiSettings(base_url="https://h.example/raven/")
    assert messangi.batch_endpoint() == "https://h.example/raven/v3/messages/batch"


def test_messangi_batch_url_is_its_own_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESSANGI__BATCH_URL", "https://h.example/v3/messages/batch")
    settings = Settings(_env_file=None)
    assert settings.messangi.batch_endpoint() == "https://h.example/v3/messages/batch"


def test_smsbuddy_balance_check_is_where_the_document_puts_it() -> None:
    assert SMSBuddySettings().balance_endpoint() == "https://thesmsbuddy.com/api/sms/balance/check"


def test_smsbuddy_balance_url_is_its_own_setting() -> None:
    smsbuddy = SMSBuddySettings(balance_url="https://h.example/balance")
    assert smsbuddy.balance_endpoint() == "https://h.example/balance"


def test_the_default_database_is_in_the_data_directory_whatever_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    expected = f"sqlite:///{tmp_path / 'data' / 'smsdispatch' / 'smsdispatch.db'}"
    assert Settings(_env_file=None).database_url == expected
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert Settings(_env_file=None).database_url == expected


def test_a_relative_xdg_data_home_is_ignored_as_the_specification_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", "relative/data")
    assert data_directory() == Path.home() / ".local" / "share" / "smsdispatch"
