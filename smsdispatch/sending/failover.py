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
bounce for ever: every vendor call that failed counts towards `max_attempts`
(at which it fails as a named message would), a message that failed before
waits its back-off before the next vendor, and a vendor refunded its turn
(pause, throttle) is paused for every worker, so closed to failover until it
can send again. A message its vendor refused on our side (our sender, its
price) that no other vendor can take now waits its back-off instead of
failing. An undocumented code moves nothing: it may have come with an
acceptance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import redis

from smsdispatch.config.catalog import RetryPolicy
from smsdispatch.config.routes import Route, RouteVendor
from smsdispatch.routing.health import BreakerState
from smsdispatch.routing.router import Router, Snapshot
from smsdispatch.sending.transitions import backoff_seconds
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
    earlier one of this message may have either. A code the vendor's table
    does not give proves nothing (it may have come with an acceptance)."""
    return (
        outcome.kind in _NOT_SENT
        and not outcome.maybe_sent
        and not outcome.undocumented
        and not row.reference_in_doubt
        and outcome.code != LIMITER_AWAY
    )


class Failover:
    """A batch's failover decisions. The routing snapshot of the batch's
    routes (weights, pauses, breakers, backlogs: a dozen Redis round trips)
    is read only when a row may move; whether a vendor is closed to routing
    before the calls costs one read of its breaker."""

    def __init__(
        self,
        router: Router,
        routes: Sequence[Route],
        now: datetime,
        unconfigured: Mapping[str, bool],  # vendor -> some required setting is unset
        snapshot: Snapshot | None = None,  # already read (tests hand one in)
    ) -> None:
        self.router = router
        self.catalog = router.catalog
        self.routes = list(routes)
        self.now = now
        self.unconfigured = unconfigured
        self._snapshot = snapshot
        self._pins: dict[str, dict[str, int]] = {}  # route -> vendor -> pinned weight

    @property
    def routing(self) -> Snapshot:
        if self._snapshot is None:
            self._snapshot = self.router.snapshot(self.now, self.routes)
        return self._snapshot

    def after(self, row: Claimed, outcome: Outcome, now: datetime) -> RowUpdate | None:
        """The row moved to another vendor of its route after `outcome`; None:
        it stays (named vendor, maybe sent, a recipient's error, out of
        attempts, nowhere to go).

        The first move after a failed call is immediate (another vendor is
        likely fine); a message that failed before waits its back-off first,
        so an outage of every vendor (or of our own network) does not spin
        it through the route once a second; `max_attempts` bounds the calls.
        """
        if row.route is None or not certainly_not_sent(row, outcome):
            return None
        refund = outcome.kind in _REFUNDED
        policy = self._policy(row)
        if not refund and row.attempts >= policy.max_attempts:
            return None
        target = self._target(row, spill=outcome.kind is OutcomeKind.DEFERRED)
        if target is None:
            return None
        due = now
        if not refund and row.attempts > 1:
            due = now + timedelta(seconds=backoff_seconds(row.attempts - 1, policy))
        reason = f"{row.provider}: {outcome.reason or outcome.kind.value}"
        return moved(row.ref, target, due, reason, outcome.code, refund=refund)

    def stay(self, row: Claimed, outcome: Outcome, planned: RowUpdate, now: datetime) -> RowUpdate:
        """A routed message its vendor refused on our side (VENDOR_REFUSED)
        that found no other vendor now is not failed for it: it waits its
        back-off and tries again (within `max_attempts`), when another vendor
        of its route may be open."""
        policy = self._policy(row)
        if (
            row.route is None
            or outcome.kind is not OutcomeKind.VENDOR_REFUSED
            or row.attempts >= policy.max_attempts
        ):
            return planned
        wait = backoff_seconds(row.attempts, policy)
        return RowUpdate(
            id=row.id,
            claim=row.claim_token,
            status=MessageStatus.QUEUED,
            attempts=row.attempts,
            next_attempt_at=now + timedelta(seconds=wait),
            error_code=outcome.code,
            error_reason=f"{row.provider} refused it ({outcome.reason}); no other vendor of "
            f"route {row.route} could take it now",
        )

    def before(self, row: Claimed, now: datetime, why: str) -> RowUpdate | None:
        """The row moved before any call, its vendor being closed to its
        route (paused, breaker open, drained); None: it stays and waits there."""
        if row.route is None or row.reference_in_doubt:
            return None
        target = self._target(row, spill=False)
        if target is None:
            return None
        return moved(row.ref, target, now, f"{row.provider}: {why}", MOVED_UNSENT, refund=True)

    def closed(self, provider: str) -> bool:
        """Whether routing sends `provider` nothing now (its breaker open; a
        pause the pipeline has read already). One read, not the snapshot."""
        try:
            return self.router.health.breaker(provider).state is BreakerState.OPEN
        except redis.RedisError:
            return False

    def drained(self, row: Claimed) -> bool:
        """Whether an operator drained the row's vendor on its route (one read
        of the route's pins, once per batch)."""
        route = self.catalog.routes.get(row.route or "")
        if route is None:
            return False
        if route.name not in self._pins:
            try:
                self._pins[route.name] = self.router.weights.pins(route)
            except redis.RedisError:
                self._pins[route.name] = {}
        return self._pins[route.name].get(row.provider) == 0

    def _policy(self, row: Claimed) -> RetryPolicy:
        entry = self.catalog.providers.get(row.provider)
        return entry.retry if entry is not None else RetryPolicy()

    def _target(self, row: Claimed, *, spill: bool) -> RouteVendor | None:
        route = self.catalog.routes.get(row.route or "")
        if route is None:  # the catalog no longer has it: the message stays
            return None
        return self.routing.failover(
            route,
            row.provider,
            lambda v: self._can_carry(v, row),
            spill=spill,
            priority=row.priority > 0,
        )

    def _can_carry(self, choice: RouteVendor, row: Claimed) -> bool:
        if self.unconfigured.get(choice.vendor, True):
            return False
        entry = self.catalog.providers.get(choice.vendor)
        return entry is not None and len(row.text) <= entry.max_text_chars


def moved(
    claim: ClaimRef,
    target: RouteVendor,
    due: datetime,
    reason: str,
    code: str | None,
    *,
    refund: bool,
) -> RowUpdate:
    """The row queued again at `target`, due at `due`, under the same id."""
    return RowUpdate(
        id=claim.id,
        claim=claim.token,
        status=MessageStatus.QUEUED,
        attempts=claim.attempts - 1 if refund else claim.attempts,
        next_attempt_at=due,
        provider=target.vendor,
        sender=target.sender,
        error_code=code,
        error_reason=f"moved to {target.vendor} ({reason})",
    )
