"""Failover at send time: a routed message its vendor certainly did not send
moves to another vendor of its route, never one that may have been sent.

A message routing chose a vendor for (`messages.route` set) may move when
its vendor's answer proves the message did not leave with it:
- a 5xx or a connection that failed before the request left (RETRY, unless
  the adapter says the request may have reached the vendor: `maybe_sent`);
- a throttle, an account error (the vendor is paused for everyone as well),
  the vendor's opening hours, or a refusal that is the vendor's and not the
  recipient's (VENDOR_REFUSED: our sender, or a destination or price the
  account may not use);
- its vendor was paused, or its breaker open, when the worker claimed it (no
  call was made);
- our own limiter deferred it, and another vendor of the route is booked
  less than `SPILL_AFTER_SECONDS` ahead (spill-over of a batch accepted at
  once, which routing could not yet see coming).

It never moves after a send that may have reached the vendor (a read timeout
after the request left, an SMPP peer's silence, `maybe_sent`), nor when an
earlier attempt left the reference in doubt: two vendors would both deliver
it. A vendor's status query or report settles those (reports/reconcile.py).
Nor on the recipient's own permanent error (an invalid or blacklisted
number): another vendor would refuse it too, or deliver what the recipient
refused. A message that named its vendor never moves.

A move is the same row under the same id: its `provider` and `sender`
become the new vendor's for that route, it is due at once and the sweeper
enqueues it on the new vendor's queue within its interval. The attempt keeps
the vendor and sender it went to (`send_attempts.provider`, `.sender`); a
refusal that cost no vendor's work (a throttle, a pause, our limiter) gives
its attempt back, as a hold on the same vendor would. A message cannot
bounce for ever: every vendor call that failed counts towards `max_attempts`,
and a vendor refunded its turn (pause, throttle) is closed to failover until
it can send again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from smsdispatch.config.catalog import Catalog
from smsdispatch.config.routes import RouteVendor
from smsdispatch.routing.router import Snapshot
from smsdispatch.store.outbox import Claimed
from smsdispatch.store.results import ClaimRef, RowUpdate
from smsdispatch.vocabulary.outcomes import Outcome, OutcomeKind
from smsdispatch.vocabulary.status import MessageStatus

# Answers that prove the vendor did not take the message (with `maybe_sent` unset).
_NOT_SENT = frozenset(
    {
        OutcomeKind.RETRY,
        OutcomeKind.RATE_LIMITED,
        OutcomeKind.ACCOUNT,
        OutcomeKind.OUTSIDE_HOURS,
        OutcomeKind.VENDOR_REFUSED,
        OutcomeKind.DEFERRED,
    }
)
# Refusals that cost the message nothing: its attempt is given back.
_REFUNDED = frozenset(
    {
        OutcomeKind.RATE_LIMITED,
        OutcomeKind.ACCOUNT,
        OutcomeKind.OUTSIDE_HOURS,
        OutcomeKind.DEFERRED,
    }
)
# Our limiter could not be asked (Redis away): no other vendor's could either.
LIMITER_AWAY = "limiter_unavailable"
# The error code a row moved before any call was made carries.
MOVED_UNSENT = "failover"


def certainly_not_sent(row: Claimed, outcome: Outcome) -> bool:
    """Whether `outcome` proves this send did not reach the vendor, and no
    earlier one of this message may have either."""
    return (
        outcome.kind in _NOT_SENT
        and not outcome.maybe_sent
        and not row.reference_in_doubt
        and outcome.code != LIMITER_AWAY
    )


@dataclass(frozen=True, slots=True)
class Failover:
    """What a batch's failover decisions need: its routing snapshot (one per
    batch, taken only when the batch holds routed messages), the catalog, and
    which vendors lack required settings."""

    routing: Snapshot
    catalog: Catalog
    unconfigured: Mapping[str, bool]  # vendor -> some required setting is unset

    def after(
        self, row: Claimed, outcome: Outcome, now: datetime, claim: ClaimRef | None = None
    ) -> RowUpdate | None:
        """The row moved to another vendor of its route after `outcome`; None:
        it stays (named vendor, maybe sent, a recipient's error, nowhere to go)."""
        if row.route is None or not certainly_not_sent(row, outcome):
            return None
        spill = outcome.kind is OutcomeKind.DEFERRED
        target = self._target(row, spill=spill)
        if target is None:
            return None
        refund = outcome.kind in _REFUNDED
        reason = f"{row.provider}: {outcome.reason or outcome.kind.value}"
        return moved(claim or row.ref, target, now, reason, outcome.code, refund=refund)

    def before(self, row: Claimed, now: datetime, why: str) -> RowUpdate | None:
        """The row moved before any call, its vendor being closed to routing
        (paused, breaker open); None: it stays and waits there."""
        if row.route is None or row.reference_in_doubt:
            return None
        target = self._target(row, spill=False)
        if target is None:
            return None
        return moved(row.ref, target, now, f"{row.provider}: {why}", MOVED_UNSENT, refund=True)

    def closed(self, provider: str) -> bool:
        return self.routing.closed_to(provider)

    def _target(self, row: Claimed, *, spill: bool) -> RouteVendor | None:
        route = self.catalog.routes.get(row.route or "")
        if route is None:  # the catalog no longer has it: the message stays
            return None
        return self.routing.failover(
            route, row.provider, lambda v: self._can_carry(v, row), spill=spill
        )

    def _can_carry(self, choice: RouteVendor, row: Claimed) -> bool:
        if self.unconfigured.get(choice.vendor, True):
            return False
        entry = self.catalog.providers.get(choice.vendor)
        return entry is not None and len(row.text) <= entry.max_text_chars


def moved(
    claim: ClaimRef,
    target: RouteVendor,
    now: datetime,
    reason: str,
    code: str | None,
    *,
    refund: bool,
) -> RowUpdate:
    """The row queued again at `target`, due now, under the same id."""
    return RowUpdate(
        id=claim.id,
        claim=claim.token,
        status=MessageStatus.QUEUED,
        attempts=claim.attempts - 1 if refund else claim.attempts,
        next_attempt_at=now,
        provider=target.vendor,
        sender=target.sender,
        error_code=code,
        error_reason=f"moved to {target.vendor} ({reason})",
    )
