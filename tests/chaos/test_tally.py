"""The tally: what the vendors received, against what the database says."""

from __future__ import annotations

from chaos.tally import Row, VendorTally, digits, tally_vendor, violations
from smsdispatch.simulators.common import Received


def row(n: int, status: str = "accepted", tracking: str | None = None) -> Row:
    return Row(n, "skycore", f"+1202200000{n}", status, tracking or f"T{n}", None)


def took(n: int, tracking: str | None = None) -> Received:
    # Skycore writes numbers without the '+'.
    return Received(tracking or f"T{n}", f"1202200000{n}", "00000", f"text {n}", None, 0.0)


def figures(vendor: str, **given: float | int | None) -> VendorTally:
    """One received message, final after a second, unless `given` says otherwise."""
    values: dict[str, object] = dict(
        submitted=1,
        received=1,
        lost=0,
        duplicated=0,
        unknown=0,
        failed=0,
        unsettled=0,
        untracked=0,
        throttled=0,
        in_flight=0,
        seconds_to_final=1.0,
    )
    values.update(given)
    return VendorTally(vendor, **values)  # type: ignore[arg-type]


def tally(rows: list[Row], received: list[Received], in_flight: int = 0) -> VendorTally:
    return tally_vendor(
        "skycore", rows, received, throttled=0, in_flight=in_flight, seconds_to_final=1.0
    )


def test_numbers_match_whether_written_with_plus_double_zero_or_bare() -> None:
    assert digits("+12022000001") == digits("0012022000001") == digits("12022000001")


def test_a_message_never_received_and_not_failed_is_lost() -> None:
    t = tally([row(1), row(2, "unknown", tracking=None), row(3, "failed")], [])
    assert (t.lost, t.failed, t.unknown) == (2, 1, 1)


def test_a_message_still_waiting_to_be_sent_is_unsettled_not_lost() -> None:
    t = tally([row(1, "queued"), row(2, "sending")], [])
    assert (t.lost, t.unsettled) == (0, 2)


def test_a_message_received_twice_counts_one_duplicate() -> None:
    t = tally([row(1)], [took(1), took(1, "T1-again")])
    assert (t.received, t.duplicated, t.lost) == (1, 1, 0)


def test_a_received_message_whose_row_lacks_the_vendors_tracking_id_is_untracked() -> None:
    t = tally([row(1, tracking="ours-only"), row(2)], [took(1), took(2)])
    assert t.untracked == 1


def test_duplicates_at_a_vendor_that_cannot_be_asked_are_tolerated_up_to_those_in_flight() -> None:
    within = tally([row(1), row(2)], [took(1), took(1, "x"), took(2), took(2, "y")], in_flight=2)
    beyond = tally([row(1), row(2)], [took(1), took(1, "x"), took(2), took(2, "y")], in_flight=1)
    assert violations(within, baseline_seconds=None, allowance_seconds=0) == []
    assert violations(beyond, baseline_seconds=None, allowance_seconds=0) == [
        "skycore: 2 duplicates, more than the 1 in flight at a killed worker"
    ]


def test_any_duplicate_at_a_vendor_that_can_be_asked_is_a_violation() -> None:
    restcomm = figures("restcomm", duplicated=1, in_flight=5)
    assert violations(restcomm, baseline_seconds=1.0, allowance_seconds=10) == [
        "restcomm: 1 duplicates, though the vendor can be asked (message list by To, From, date)"
    ]


def test_final_later_than_the_baseline_plus_the_allowance_is_a_stall() -> None:
    late = figures("cue", seconds_to_final=20.0)
    assert violations(late, baseline_seconds=2.0, allowance_seconds=18.0) == []
    assert violations(late, baseline_seconds=1.0, allowance_seconds=18.0) == [
        "cue: stalled: 20.0 s to final, more than the baseline 1.0 s + 18 s"
    ]


def test_messages_not_final_when_the_run_ended_are_a_stall() -> None:
    stuck = figures("cue", submitted=2, unsettled=1, seconds_to_final=None)
    assert "cue: stalled: 1 not final when the run ended" in violations(
        stuck, baseline_seconds=1.0, allowance_seconds=10
    )


def test_a_failed_message_is_a_violation_no_fault_here_excuses() -> None:
    assert violations(figures("cue", failed=1), baseline_seconds=None, allowance_seconds=5) == [
        "cue: 1 of 1 failed"
    ]
