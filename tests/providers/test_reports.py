"""Each vendor's report vocabulary and form, held against its document."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from smsdispatch.providers import cue, messangi, restcomm, skycore, smsbuddy
from smsdispatch.providers.base import Adapter
from smsdispatch.providers.reports import our_reference
from smsdispatch.vocabulary.delivery import IncomingReport, MalformedReport
from smsdispatch.vocabulary.status import MessageStatus

S = MessageStatus
# One of our references, as a vendor echoes it.
OURS = "3f2a9c0d1b4e5f60718293a4b5c6d7e8"

# The callback statuses messangi.txt lists, every one.
MESSANGI_DOCUMENTED = {
    "DELIVRD", "EXPIRED", "DELETED", "UNDELIV", "ACCEPTD", "UNKNOWN", "REJECTD",
    "INVALID_ROUTING", "CODE_NOT_ALLOWED", "BLACKLISTED", "QUEUE", "DEQUEUED",
    "SENT", "ERROR", "ENROUTE", "SEGMENTS_EXCEEDED",
}  # fmt: skip


def post_json(body: object) -> IncomingReport:
    return IncomingReport("POST", {}, json.dumps(body).encode(), "application/json")


def test_messangi_maps_every_documented_callback_status() -> None:
    assert set(messangi.REPORT_STATUSES) == MESSANGI_DOCUMENTED


def test_cue_maps_every_report_mask_bit() -> None:
    assert set(cue.REPORT_STATUSES) == {str(int(bit)) for bit in cue.ReportStatus}
    assert cue.REPORT_STATUSES["16"] is S.FAILED


def test_restcomm_maps_every_outbound_status_of_its_document() -> None:
    outbound = {"queued", "sending", "sent", "failed", "delivered", "undelivered"}
    assert set(restcomm.REPORT_STATUSES) == outbound


def test_cue_report_names_our_message_from_the_query_cue_requested() -> None:
    report = cue.CueAdapter.parse_report(
        IncomingReport("GET", {"message_id": OURS, "status": "2"}, b"")
    )
    assert (report.reference, report.status, report.vendor_status) == (OURS, S.UNDELIVERED, "2")


def test_cue_report_naming_a_row_id_names_it_as_a_legacy_reference() -> None:
    # Matched by messages.reference: only a row sent before migration 0005 has it.
    report = cue.CueAdapter.parse_report(
        IncomingReport("GET", {"message_id": "42", "status": "2"}, b"")
    )
    assert (report.reference, report.status) == ("42", S.UNDELIVERED)


def test_cue_report_naming_no_reference_is_refused_as_not_ours() -> None:
    with pytest.raises(MalformedReport):
        cue.CueAdapter.parse_report(
            IncomingReport("GET", {"message_id": "042", "status": "2"}, b"")
        )


def test_messangi_callback_is_matched_by_its_id_and_names_our_external_id() -> None:
    report = messangi.MessangiAdapter.parse_report(
        post_json({"id": "611b3a42", "externalId": OURS, "status": "EXPIRED"})
    )
    assert (report.tracking_id, report.reference, report.status) == ("611b3a42", OURS, S.EXPIRED)


def test_messangi_callback_date_is_kept_as_the_vendors_time_of_the_status() -> None:
    report = messangi.MessangiAdapter.parse_report(
        post_json({"id": "611b3a42", "status": "DELIVRD", "date": "2026-11-20T10:00:05.250Z"})
    )
    assert report.vendor_at == datetime(2026, 11, 20, 10, 0, 5, 250000, tzinfo=UTC)


def test_a_report_with_an_unreadable_date_is_kept_without_the_vendors_time() -> None:
    report = messangi.MessangiAdapter.parse_report(
        post_json({"id": "611b3a42", "status": "DELIVRD", "date": "yesterday"})
    )
    assert (report.status, report.vendor_at) == (S.DELIVERED, None)


def test_a_report_dated_before_the_first_utc_moment_is_kept_without_the_vendors_time() -> None:
    report = messangi.MessangiAdapter.parse_report(
        post_json({"id": "611b3a42", "status": "DELIVRD", "date": "0001-01-01T00:00:00+01:00"})
    )
    assert (report.status, report.vendor_at) == (S.DELIVERED, None)


def test_messangi_batch_external_id_names_no_message_of_ours() -> None:
    batch = f"batch{OURS}x100"
    report = messangi.MessangiAdapter.parse_report(
        post_json({"data": {"id": "611b3a42", "externalId": batch, "status": "DELIVRD"}})
    )
    assert (report.tracking_id, report.reference) == ("611b3a42", None)


@pytest.mark.parametrize(
    "echoed",
    ["0042", "-7", "1" * 20, OURS.upper(), OURS[:-1], OURS + "0", f"{OURS}x"],
)
def test_only_a_well_formed_reference_is_ours(echoed: str) -> None:
    assert our_reference(echoed) is None
    assert our_reference(OURS) == OURS


@pytest.mark.parametrize("row_id", ["7", "1234567890123456789"])
def test_a_row_id_as_references_were_before_migration_0005_is_ours(row_id: str) -> None:
    # Rows sent before references were random keep their row id as reference.
    assert our_reference(row_id) == row_id


def test_restcomm_status_callback_carries_the_error_code_and_its_words() -> None:
    body = b"MessageSid=SM1&MessageStatus=undelivered&ErrorCode=30005&AccountSid=AC1"
    report = restcomm.RestcommAdapter.parse_report(IncomingReport("POST", {}, body))
    assert (report.tracking_id, report.status, report.error_code) == ("SM1", S.UNDELIVERED, "30005")
    assert report.error_reason == "Unknown destination handset"


def test_smsbuddy_report_reads_a_get_query_as_well_as_a_form() -> None:
    query = smsbuddy.SMSBuddyAdapter.parse_report(
        IncomingReport("GET", {"id": "x-1", "status": "DND", "custom": OURS}, b"")
    )
    form = smsbuddy.SMSBuddyAdapter.parse_report(
        IncomingReport("POST", {}, b"id=x-1&status=DELIVRD")
    )
    assert (query.tracking_id, query.reference, query.status) == ("x-1", OURS, S.FAILED)
    assert (form.tracking_id, form.reference, form.status) == ("x-1", None, S.DELIVERED)


def test_skycore_postback_status_is_read_case_insensitively() -> None:
    report = skycore.SkycoreAdapter.parse_report(
        post_json({"tracking-id": "T9", "status": "Undelivered", "error-code": "E4"})
    )
    assert (report.tracking_id, report.status, report.error_code) == ("T9", S.UNDELIVERED, "E4")


@pytest.mark.parametrize(
    ("adapter", "incoming"),
    [
        (cue.CueAdapter, IncomingReport("GET", {"status": "1"}, b"")),
        (cue.CueAdapter, IncomingReport("GET", {"message_id": "x", "status": "1"}, b"")),
        (messangi.MessangiAdapter, post_json({"id": "1"})),
        (messangi.MessangiAdapter, IncomingReport("GET", {"id": "1", "status": "DELIVRD"}, b"")),
        (
            restcomm.RestcommAdapter,
            IncomingReport("POST", {}, b"MessageStatus=received&MessageSid=S"),
        ),
        (smsbuddy.SMSBuddyAdapter, IncomingReport("POST", {}, b"status=DELIVRD")),
        (skycore.SkycoreAdapter, post_json({"tracking-id": "T", "status": "lost"})),
        (skycore.SkycoreAdapter, IncomingReport("POST", {}, b"\xff\xfe")),
    ],
)
def test_what_is_not_a_report_in_the_vendors_form_is_refused(
    adapter: type[Adapter[Any]], incoming: IncomingReport
) -> None:
    with pytest.raises(MalformedReport):
        adapter.parse_report(incoming)
