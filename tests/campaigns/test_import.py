"""Importing recipients: good rows stored, each bad row reported by line and reason."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import select

from smsdispatch.campaigns.importer import ImportRefused
from smsdispatch.campaigns.recipients import BadRow
from smsdispatch.campaigns.service import CampaignError, CampaignNotReady, Campaigns
from smsdispatch.store import optouts
from smsdispatch.store.models import messages
from smsdispatch.vocabulary.message import is_reference
from smsdispatch.vocabulary.status import CampaignStatus, MessageStatus
from tests.campaigns.conftest import campaign_with, csv_of, spec

MIXED = (
    "phone,name\n"
    "+12125551001,Ana\n"  # 2 good
    "not a number,Bo\n"  # 3 invalid number
    "+12125551002,\n"  # 4 empty placeholder value
    "+12125551003,Cy,extra\n"  # 5 wrong field count
    "+12125551001,Ana again\n"  # 6 duplicate of line 2
    "(212) 555-1004,Di\n"  # 7 good: a local number in the default region
    "+12125551005," + "x" * 950 + "\n"  # 8 too long for Cue
    "+12125551006,Ed\n"  # 9 opted out
)


def test_a_csv_with_bad_rows_imports_the_good_ones_and_reports_each_bad_one(
    service: Campaigns,
) -> None:
    with service.db.session() as session, session.begin():
        optouts.add(session, ["+12125551006"], service.clock(), "STOP")
    campaign_id = service.create(spec(default_region="US"))
    reported: list[BadRow] = []

    result = service.import_csv(campaign_id, io.BytesIO(MIXED.encode()), on_reject=reported.append)

    assert result.imported == 2
    assert [(bad.line, bad.reason) for bad in reported] == [
        (
            3,
            "phone 'not a number' cannot be read as a phone number (The string supplied did "
            "not seem to be a phone number.)",
        ),
        (4, "column 'name' is empty"),
        (5, "has 3 fields; the header has 2"),
        (6, "duplicate: +12125551001 is already in the list"),
        (8, "the message is 968 characters; cue takes at most 918"),
        (9, "+12125551006 is on the opt-out list"),
    ]
    assert (result.rejected, result.duplicates, result.opted_out) == (6, 1, 1)
    with service.db.session() as session:
        stored = session.execute(
            select(messages.c.recipient, messages.c.text, messages.c.status, messages.c.params)
            .where(messages.c.campaign_id == campaign_id)
            .order_by(messages.c.id)
        ).all()
    assert [tuple(r) for r in stored] == [
        ("+12125551001", "Hi Ana, 20% off today", MessageStatus.HELD, ["Ana"]),
        ("+12125551004", "Hi Di, 20% off today", MessageStatus.HELD, ["Di"]),
    ]
    campaign = service.get(campaign_id)
    assert (campaign["imported"], campaign["rejected"]) == (2, 6)


def test_every_imported_recipient_gets_a_reference_of_its_own(service: Campaigns) -> None:
    # COPY on PostgreSQL and executemany on SQLite leave the reference to the
    # column's default: each row must still draw its own.
    campaign_id = campaign_with(service, 300)
    with service.db.session() as session:
        refs = list(
            session.scalars(
                select(messages.c.reference).where(messages.c.campaign_id == campaign_id)
            )
        )
    assert len(refs) == 300
    assert all(is_reference(r) for r in refs)
    assert len(set(refs)) == 300


def test_importing_the_same_list_again_adds_nothing(service: Campaigns) -> None:
    campaign_id = campaign_with(service, 50)

    again = service.import_csv(campaign_id, csv_of(60))

    assert (again.imported, again.duplicates) == (10, 50)
    assert service.get(campaign_id)["imported"] == 60


def test_a_template_column_missing_from_the_file_refuses_the_import(service: Campaigns) -> None:
    campaign_id = service.create(spec(template="Hi {first_name}"))
    with pytest.raises(
        CampaignNotReady, match=r"uses \{first_name\} but the file has no such column"
    ):
        service.import_csv(campaign_id, csv_of(3))


def test_a_running_campaign_takes_no_more_recipients(service: Campaigns) -> None:
    campaign_id = campaign_with(service, 3)
    service.start(campaign_id)
    with pytest.raises(ImportRefused, match="is running") as raised:
        service.import_csv(campaign_id, csv_of(3, start=10))
    assert (raised.value.campaign_id, raised.value.status) == (campaign_id, CampaignStatus.RUNNING)


def test_a_plain_list_of_numbers_fills_a_template_without_placeholders(
    service: Campaigns,
) -> None:
    campaign_id = service.create(spec(template="Sale ends tonight"))
    result = service.import_numbers(campaign_id, ["+12125551001", "bogus", "+12125551002"])
    assert result.imported == 2
    assert [b.line for b in result.first_rejections] == [2]


def test_preview_shows_rendered_messages_encoding_and_total_segments(
    service: Campaigns,
) -> None:
    campaign_id = service.create(spec(template="{name} " + "ok " * 60))  # 2 segments in GSM-7
    data = "phone,name\n+12125551001,Ana\n+12125551002,Zoë\n+12125551003,Łukasz\n"
    service.import_csv(campaign_id, io.BytesIO(data.encode()))

    preview = service.preview(campaign_id, samples=2)

    assert preview.messages == 3
    assert preview.by_encoding == {"gsm7": 1, "ucs2": 2}
    # GSM-7: 184 septets -> 2 segments; UCS-2: 184 and 187 units -> 3 each.
    assert preview.segments == 2 + 3 + 3
    assert preview.max_segments == 3
    assert [s.recipient for s in preview.samples] == ["+1212****001", "+1212****002"]
    assert preview.samples[0].text.startswith("Ana ok ok")


def test_a_campaign_with_an_unknown_sender_is_refused_naming_the_field(
    service: Campaigns,
) -> None:
    with pytest.raises(CampaignError) as raised:
        service.create(spec(sender="NOPE"))
    assert raised.value.field == "sender"
