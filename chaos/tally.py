"""Counting at the vendors: what each one really received against the database.

Every message of a run has its own recipient, so what a vendor received
(`state.received` of its simulator) is matched to our rows by number alone,
whatever the vendor does with a '+'. Per vendor:

- submitted: rows the producer stored (ids it returned);
- received: distinct messages the vendor took at least once;
- lost: submitted, never received, not failed with a reason, and no longer
  waiting to be sent: the promise broken silently (a row `accepted` that the
  vendor never got, or left `unknown` though it never reached the vendor:
  nothing will ever send it). A row still `queued` or `sending` when the run
  ended is not counted here but as unsettled: it may yet be sent, late;
- duplicated: receptions beyond the first of the same message;
- unknown: rows left `unknown` (ambiguous sends awaiting reconciliation);
- failed: rows failed with a reason (not a loss: the caller is told);
- unsettled: rows still `queued`/`sending` when the run ended (a stall);
- untracked: messages the vendor took whose row does not hold one of the
  tracking ids the vendor gave for it (delivery reports cannot find it);
- throttled: requests the vendor refused for its ceiling (a limit broken);
- in_flight: rows in `sending` when a worker was killed; where the vendor
  can neither deduplicate nor be asked, that many duplicates are tolerated
  (DESIGN.md invariant 3); after any other fault, none;
- seconds_to_final: from the first submission until every row of the vendor
  was settled (smsdispatch/vocabulary/status.py SETTLED: `accepted` counts as final since
  delivery reports are off in these runs), except a row `unknown` whose
  message the vendor never took: reconciliation may yet find it absent and
  have it sent, so the vendor is not final until none is left.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from smsdispatch.simulators.common import Received
from smsdispatch.vocabulary.status import UNSENT, MessageStatus

# Vendors whose duplicates are avoidable: Cue rejects our client_reference a
# second time (-7); Restcomm's message list by To, From and date tells
# whether a message already went out. At the others a resend after a worker
# died mid-call may duplicate, at most once per message then in flight.
ASKABLE: Mapping[str, str] = {
    "cue": "deduplicates our client_reference",
    "restcomm": "can be asked (message list by To, From, date)",
}


@dataclass(frozen=True, slots=True)
class Row:
    """What the database says about one message at the end of a run."""

    id: int
    provider: str
    recipient: str
    status: str
    tracking_id: str | None
    error_code: str | None


@dataclass
class VendorTally:
    vendor: str
    submitted: int
    received: int
    lost: int
    duplicated: int
    unknown: int
    failed: int
    unsettled: int
    untracked: int
    throttled: int
    in_flight: int
    seconds_to_final: float | None  # None: not all final when the run ended

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def digits(number: str) -> str:
    """A number as the vendors may write it (+, 00, or bare) reduced to its digits."""
    bare = number.strip().removeprefix("+")
    return bare.removeprefix("00") if number.strip().startswith("00") else bare


def tally_vendor(
    vendor: str,
    rows: Iterable[Row],
    received: Iterable[Received],
    *,
    throttled: int,
    in_flight: int,
    seconds_to_final: float | None,
) -> VendorTally:
    ours = [r for r in rows if r.provider == vendor]
    takes: Counter[str] = Counter()
    tracking: dict[str, set[str]] = defaultdict(set)
    for r in received:
        key = digits(r.to)
        takes[key] += 1
        tracking[key].add(r.tracking_id)
    lost = untracked = 0
    for row in ours:
        key = digits(row.recipient)
        if takes[key] == 0:
            if row.status not in (MessageStatus.FAILED, *UNSENT):
                lost += 1
        elif row.status != MessageStatus.UNKNOWN and row.tracking_id not in tracking[key]:
            untracked += 1
    statuses = Counter(r.status for r in ours)
    mine = {digits(r.recipient) for r in ours}
    return VendorTally(
        vendor=vendor,
        submitted=len(ours),
        received=sum(1 for key in takes if key in mine),
        lost=lost,
        duplicated=sum(n - 1 for key, n in takes.items() if key in mine),
        unknown=statuses[MessageStatus.UNKNOWN],
        failed=statuses[MessageStatus.FAILED],
        unsettled=sum(statuses[s] for s in UNSENT),
        untracked=untracked,
        throttled=throttled,
        in_flight=in_flight,
        seconds_to_final=seconds_to_final,
    )


def violations(
    tally: VendorTally, *, baseline_seconds: float | None, allowance_seconds: float
) -> list[str]:
    """What breaks the promise: loss (failures too), an avoidable or excess
    duplicate, a stall."""
    found = []
    v = tally.vendor
    if tally.lost:
        found.append(f"{v}: {tally.lost} of {tally.submitted} lost")
    if tally.failed:
        # No fault here makes a message unsendable: a failure is one lost with a reason.
        found.append(f"{v}: {tally.failed} of {tally.submitted} failed")
    if v in ASKABLE and tally.duplicated:
        found.append(f"{v}: {tally.duplicated} duplicates, though the vendor {ASKABLE[v]}")
    elif tally.duplicated > tally.in_flight:
        found.append(
            f"{v}: {tally.duplicated} duplicates, more than the {tally.in_flight} "
            "in flight at a killed worker"
        )
    if tally.seconds_to_final is None:
        found.append(f"{v}: stalled: {tally.unsettled} not final when the run ended")
    elif baseline_seconds is not None:
        limit = baseline_seconds + allowance_seconds
        if tally.seconds_to_final > limit:
            found.append(
                f"{v}: stalled: {tally.seconds_to_final:.1f} s to final, more than the "
                f"baseline {baseline_seconds:.1f} s + {allowance_seconds:.0f} s"
            )
    return found
