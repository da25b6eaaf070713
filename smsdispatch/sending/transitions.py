"""What a vendor's outcome does to a message row: pure functions, no I/O.

Kept apart from the pipeline so every rule (retry budget, refunds for
throttling and pauses, back-off with jitter) is tested without a database.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime, timedelta

from smsdispatch.config.catalog import ProviderEntry, RetryPolicy
from smsdispatch.store.results import AttemptRecord, ClaimRef, RowUpdate, SendResult
from smsdispatch.vocabulary.message import new_reference
from smsdispatch.vocabulary.outcomes import Outcome, OutcomeKind, clip_raw
from smsdispatch.vocabulary.status import MessageStatus


def backoff_seconds(attempt: int, policy: RetryPolicy, rng: random.Random | None = None) -> float:
    """Exponential back-off with "equal jitter": half fixed, half random.

    The fixed half keeps a retry from coming straight back; the random half
    spreads a burst of failures so they do not return as one burst.
    """
    ceiling = min(policy.backoff_cap_seconds, policy.backoff_base_seconds * 2.0 ** (attempt - 1))
    uniform = rng.uniform if rng is not None else random.uniform
    return ceiling / 2 + uniform(0, ceiling / 2)


def result_of(
    claim: ClaimRef, outcome: Outcome, entry: ProviderEntry, at: datetime, sender: str | None = None
) -> SendResult:
    """The row update and the attempt record one vendor answer leaves to write."""
    return SendResult(
        plan_update(claim, outcome, entry, at), attempt_of(claim, outcome, entry, at, sender)
    )


def attempt_of(
    claim: ClaimRef, outcome: Outcome, entry: ProviderEntry, at: datetime, sender: str | None
) -> AttemptRecord:
    """What one vendor call answered, with the vendor and sender it went to: a
    routed message may try several (sending/failover.py)."""
    return AttemptRecord(
        claim.id,
        claim.attempts,
        outcome.kind.value,
        outcome.code,
        outcome.reason,
        outcome.tracking_id,
        clip_raw(outcome.raw),
        at,
        provider=entry.name,
        sender=outcome.sender or sender,
    )


def plan_update(
    claim: ClaimRef,
    outcome: Outcome,
    entry: ProviderEntry,
    now: datetime,
    rng: random.Random | None = None,
) -> RowUpdate:
    """The row update for one outcome; `claim.attempts` counts the call just made."""
    update = _plan(claim, outcome, entry, now, rng)
    if outcome.sender:
        update = replace(update, sender=outcome.sender)
    if outcome.maybe_sent or outcome.kind is OutcomeKind.AMBIGUOUS:
        update = replace(update, reference_in_doubt=True)
    if outcome.renew_reference:
        update = replace(update, reference=new_reference())
    return update


def _plan(
    claim: ClaimRef,
    outcome: Outcome,
    entry: ProviderEntry,
    now: datetime,
    rng: random.Random | None,
) -> RowUpdate:
    policy = entry.retry
    kind = outcome.kind
    attempts = claim.attempts
    if kind is OutcomeKind.ACCEPTED:
        return RowUpdate(
            claim.id,
            claim.token,
            MessageStatus.ACCEPTED,
            attempts,
            tracking_id=outcome.tracking_id,
            vendor_status=outcome.vendor_status,
            sent_at=now,
        )
    if kind in (OutcomeKind.RATE_LIMITED, OutcomeKind.DEFERRED):
        wait = outcome.retry_after or policy.rate_limited_wait_seconds
        return hold(claim, now + timedelta(seconds=wait), outcome)
    if kind is OutcomeKind.OUTSIDE_HOURS:
        quiet = entry.quiet_hours
        opens = quiet.next_open(now) if quiet else None
        # The vendor says "not now" though our catalog thinks it is open (or
        # declares no hours): try again after a pause rather than hammer it.
        until = opens or now + timedelta(seconds=policy.pause_seconds)
        return hold(claim, until, outcome)
    if kind is OutcomeKind.ACCOUNT:
        return hold(claim, now + timedelta(seconds=policy.pause_seconds), outcome)
    # A vendor may give its id with a failure (Restcomm's "failed" message):
    # keep it, since reconciliation looks messages up by it.
    failed = RowUpdate(
        claim.id,
        claim.token,
        MessageStatus.FAILED,
        attempts,
        tracking_id=outcome.tracking_id,
        error_code=outcome.code,
        error_reason=outcome.reason,
        final_at=now,
    )
    if kind in (OutcomeKind.PERMANENT, OutcomeKind.VENDOR_REFUSED):
        # A routed message the vendor refused never gets here: it moved first.
        return failed
    if kind is OutcomeKind.AMBIGUOUS:
        return replace(failed, status=MessageStatus.UNKNOWN, final_at=None, sent_at=now)
    if attempts >= policy.max_attempts:
        reason = f"gave up after {attempts} attempts: {outcome.reason}"
        if outcome.maybe_sent:
            # The last try may have reached the vendor (a resend was safe, not
            # a proof it failed): reconciliation decides, not us.
            return replace(
                failed,
                status=MessageStatus.UNKNOWN,
                final_at=None,
                sent_at=now,
                error_reason=reason,
            )
        return replace(failed, error_reason=reason)
    wait = backoff_seconds(attempts, policy, rng)
    return replace(
        failed,
        status=MessageStatus.QUEUED,
        final_at=None,
        next_attempt_at=now + timedelta(seconds=wait),
    )


def hold(
    claim: ClaimRef,
    until: datetime,
    outcome: Outcome | None = None,
    *,
    reason: str | None = None,
    code: str | None = None,
) -> RowUpdate:
    """Put a claimed row back to wait, refunding the attempt: the message is
    not at fault when the vendor throttles or the account is paused."""
    return RowUpdate(
        id=claim.id,
        claim=claim.token,
        status=MessageStatus.QUEUED,
        attempts=claim.attempts - 1,
        next_attempt_at=until,
        error_code=code or (outcome.code if outcome else None),
        error_reason=reason or (outcome.reason if outcome else None),
    )


def invalid(claim: ClaimRef, reason: str, now: datetime, code: str = "invalid") -> RowUpdate:
    """A row that can never be sent as written (another app wrote it directly),
    or whose recipient opted out after it was stored."""
    return RowUpdate(
        id=claim.id,
        claim=claim.token,
        status=MessageStatus.FAILED,
        attempts=claim.attempts,
        error_code=code,
        error_reason=reason,
        final_at=now,
    )
