"""`smsdispatch campaign` and `smsdispatch optout`, run as an operator runs them."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from sqlalchemy import update

from smsdispatch.local.simulators import SimulatorServer
from smsdispatch.store.db import Database
from smsdispatch.store.models import messages
from smsdispatch.vocabulary.status import MessageStatus
from tests.test_cli import cli_env, run

RECIPIENTS = "phone,name\n+12125551001,Ana\n+12125551002,Bo\n12,Cy\n+12125551003,Zoë\n"


def create(env: dict[str, str], csv: Path) -> None:
    result = run(
        [
            "campaign", "create", "--name", "sale", "--provider", "cue",
            "--template", "Hi {name}, 20% off", "--recipients", str(csv),
        ],
        env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "campaign 1 created" in result.stdout
    assert "imported 3; rejected 1" in result.stdout


@pytest.fixture
def env(tmp_path: Path, simulators: SimulatorServer, redis_url: str) -> dict[str, str]:
    return cli_env(tmp_path, simulators, redis_url)


@pytest.fixture
def with_campaign(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The environment, after campaign 1 was created from RECIPIENTS."""
    csv = tmp_path / "list.csv"
    csv.write_text(RECIPIENTS, encoding="utf-8")
    create(env, csv)
    return env


def test_create_imports_the_list_and_writes_every_rejected_row_with_its_line(
    with_campaign: dict[str, str], tmp_path: Path
) -> None:
    rejects = (tmp_path / "list.csv.rejected.csv").read_text(encoding="utf-8").splitlines()
    assert rejects[0] == "line,reason"
    assert rejects[1].startswith("4,\"phone '12'")


def test_preview_shows_samples_and_the_total_segment_count(
    with_campaign: dict[str, str],
) -> None:
    result = run(["campaign", "preview", "1"], with_campaign)
    assert result.returncode == 0, result.stderr
    assert "Hi Ana, 20% off" in result.stdout
    assert "3 messages (2 gsm7, 1 ucs2)" in result.stdout
    assert "3 segments in all" in result.stdout


def test_control_commands_move_the_campaign_and_refuse_what_does_not_apply(
    with_campaign: dict[str, str], redis_client: redis.Redis
) -> None:
    env = with_campaign
    steps = [
        (["schedule", "1", "--start", "2030-01-01T09:00", "--timezone", "Europe/Paris"], 0),
        (["resume", "1"], 2),
        (["pause", "1"], 0),
        (["cancel", "1"], 0),
    ]
    outputs = []
    for args, code in steps:
        result = run(["campaign", *args], env)
        assert result.returncode == code, result.stdout + result.stderr
        outputs.append(result.stdout + result.stderr)
    assert "campaign 1 is scheduled; resume applies to a paused campaign" in outputs[1]
    assert "3 unsent messages cancelled" in outputs[3]
    shown = run(["campaign", "show", "1"], env).stdout
    assert "cancelled" in shown
    assert "2030-01-01 09:00 CET" in shown
    listed = run(["campaign", "list"], env).stdout
    assert "cancelled 3" in listed


def test_watch_ends_when_the_campaign_is_done(
    with_campaign: dict[str, str], redis_client: redis.Redis
) -> None:
    env = with_campaign
    db = Database(env["DATABASE_URL"])
    with db.session() as session, session.begin():
        session.execute(update(messages).values(status=MessageStatus.DELIVERED))
    db.dispose()
    assert run(["campaign", "start", "1"], env).returncode == 0
    assert run(["campaign", "cancel", "1"], env).returncode == 0

    result = run(["campaign", "watch", "1", "--interval", "0.1"], env)

    assert result.returncode == 0, result.stderr
    assert "3/3 sent" in result.stdout
    assert "delivered 3" in result.stdout


def test_watch_of_a_sent_campaign_waits_for_its_reports_and_says_how_many_are_missing(
    with_campaign: dict[str, str], redis_client: redis.Redis
) -> None:
    env = with_campaign
    db = Database(env["DATABASE_URL"])
    with db.session() as session, session.begin():
        session.execute(update(messages).values(status=MessageStatus.UNDELIVERED))
        session.execute(
            update(messages).where(messages.c.id == 1).values(status=MessageStatus.ACCEPTED)
        )
    db.dispose()
    assert run(["campaign", "start", "1"], env).returncode == 0
    assert run(["campaign", "cancel", "1"], env).returncode == 0

    result = run(["campaign", "watch", "1", "--interval", "0.1", "--report-wait", "0.5"], env)

    assert result.returncode == 0, result.stderr
    assert "sent, 1 awaiting reports" in result.stdout
    assert "undelivered 2" in result.stdout
    assert "failed" not in result.stdout  # undelivered is not failed
    assert "stopped watching: 1 message still awaiting delivery reports" in result.stdout


def test_opted_out_numbers_are_listed_imported_and_removed(
    env: dict[str, str], tmp_path: Path
) -> None:
    numbers = tmp_path / "stop.csv"
    numbers.write_text("phone\n+12125551001\nnonsense\n(212) 555-1002\n", encoding="utf-8")

    imported = run(["optout", "import", str(numbers), "--region", "US"], env)
    added = run(["optout", "add", "+12125551003", "+12125551001"], env)
    removed = run(["optout", "remove", "+12125551002"], env)
    counted = run(["optout", "count"], env)

    assert "2 added (0 already on the list); 1 lines rejected" in imported.stdout
    assert "line 3" in imported.stdout
    assert "1 added" in added.stdout
    assert "1 removed" in removed.stdout
    assert counted.stdout.strip() == "2"


def test_a_campaign_created_without_a_provider_is_routed_and_previews_its_vendor_split(
    env: dict[str, str], tmp_path: Path
) -> None:
    csv = tmp_path / "list.csv"
    csv.write_text(RECIPIENTS, encoding="utf-8")
    result = run(
        ["campaign", "create", "--name", "auto", "--template", "Hi {name}",
         "--recipients", str(csv)],
        env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    preview = run(["campaign", "preview", "1"], env)
    assert preview.returncode == 0, preview.stderr
    assert "expected split by current weights" in preview.stdout
    # The shipped catalog prices no vendor.
    assert "no price" in preview.stdout
    show = run(["campaign", "show", "1"], env)
    assert "auto" in show.stdout
    assert "messages per vendor" in show.stdout
