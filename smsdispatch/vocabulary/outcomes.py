"""The normalized outcome of one vendor call for one message.

Every vendor's answer is read into one of these kinds (each vendor module's
code table says which), and sending/transitions.py turns the kind into the
row's next state:

    OutcomeKind
    ├── ACCEPTED       the vendor took the message; its tracking id is kept
    ├── RETRY          it did not land (5xx, connect error, "system error", an
    │                  undocumented code): back off with jitter, resend
    ├── RATE_LIMITED   throttled (429, queue overflow): wait, no retry budget used
    ├── PERMANENT      this message can never go (bad number, blacklisted, too long): fail it
    ├── VENDOR_REFUSED this vendor will not carry it for us (invalid sender, route or price
    │                  not allowed for the account): fail it if it named its vendor, else
    │                  another vendor of its route takes it (sending/failover.py)
    ├── ACCOUNT        the account cannot send (bad key, no credit, suspended):
    │                  pause the vendor, fail nothing
    ├── AMBIGUOUS      the request left and the answer was lost: `unknown`, reconcile,
    │                  do not resend blindly
    ├── OUTSIDE_HOURS  the vendor sends only at certain hours (SMSBuddy 451): hold
    │                  until they open
    └── DEFERRED       not sent at all: our own limiter or quiet hours held it
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import NamedTuple


class OutcomeKind(StrEnum):
    ACCEPTED = "accepted"  # the vendor took it; tracking_id holds its id when it gave one
    RETRY = "retry"  # did not land: back off with jitter and send again
    RATE_LIMITED = "rate_limited"  # throttled: wait (retry_after), not counted as an attempt
    PERMANENT = "permanent"  # can never succeed as it is: fail with the vendor's code
    # This vendor will not carry it (its sender, route or price for our account);
    # another vendor might: a routed message fails over, a named one fails.
    VENDOR_REFUSED = "vendor_refused"
    ACCOUNT = "account"  # the account cannot send: pause the vendor, fail nothing
    AMBIGUOUS = "ambiguous"  # may have been sent: mark unknown for reconciliation
    OUTSIDE_HOURS = "outside_hours"  # the vendor sends only at certain hours: hold until they open
    DEFERRED = "deferred"  # not sent: our own limiter or quiet hours held it


class Rule(NamedTuple):
    """One line of a vendor's code table: what the code means to us."""

    kind: OutcomeKind
    reason: str


CodeTable = Mapping[str, Rule]

RAW_LIMIT = 2000


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: OutcomeKind
    tracking_id: str | None = None
    code: str | None = None  # the vendor's code, as text ("-4", "E111", "30001", "429")
    reason: str | None = None  # the vendor's words where it gave any, else ours
    vendor_status: str | None = None  # the vendor's status word on acceptance ("QUEUE", "sending")
    retry_after: float | None = None  # seconds, where the vendor said how long to wait
    raw: str | None = None  # the vendor's answer, truncated: nothing it said is lost
    sender: str | None = None  # the sender it went from, when chosen at send time (a pool)
    # The code is not in the vendor's code table (see `undocumented_code`).
    undocumented: bool = False
    # The message this outcome answers (`Adapter.send` sets it), so an answer
    # that repeats can be counted across distinct messages.
    message_id: int | None = None
    # The request may have reached the vendor though no answer came back: the
    # message's reference is in doubt from now on (see providers/cue.py -7).
    maybe_sent: bool = False
    # The vendor will never take this reference again (Cue's -7 after only
    # refusals): the message is sent again under a new one.
    renew_reference: bool = False
    # How long the vendor took to answer the request that carried it (None:
    # no answer came), for its health (routing/health.py).
    seconds: float | None = None

    @classmethod
    def accepted(
        cls,
        tracking_id: str | None,
        *,
        vendor_status: str | None = None,
        code: str | None = None,
        raw: str | None = None,
    ) -> Outcome:
        return cls(
            OutcomeKind.ACCEPTED,
            tracking_id=tracking_id,
            vendor_status=vendor_status,
            code=code,
            raw=clip_raw(raw),
        )

    @classmethod
    def from_code(
        cls,
        code: str,
        table: CodeTable,
        *,
        reason: str | None = None,
        default: OutcomeKind = OutcomeKind.RETRY,
        raw: str | None = None,
        retry_after: float | None = None,
    ) -> Outcome:
        """Classify a vendor code through its table.

        A code the table does not know is `undocumented_code`, of class
        `default` where the vendor module knows better than a retry (an
        unknown status word that came with an acceptance is ambiguous).
        """
        rule = table.get(code)
        if rule is None:
            return cls.undocumented_code(
                code, reason=reason, kind=default, raw=raw, retry_after=retry_after
            )
        return cls(
            rule.kind,
            code=code,
            reason=reason or rule.reason,
            raw=clip_raw(raw),
            retry_after=retry_after,
        )

    @classmethod
    def undocumented_code(
        cls,
        code: str | None,
        *,
        reason: str | None = None,
        kind: OutcomeKind = OutcomeKind.RETRY,
        raw: str | None = None,
        retry_after: float | None = None,
    ) -> Outcome:
        """A code the vendor's document does not give, marked `undocumented`.

        It never fails a message at once: nobody knows what it means, and an
        account problem the document left out (no balance, a key turned off)
        would fail every queued message. So it is retried within the vendor's
        retry budget, and when the same code comes back for several messages
        the pipeline pauses the vendor with the vendor's words as the reason
        (limits/pauses.py). An answer whose HTTP status gives its class (a
        5xx, a throttle, a refused key) is not undocumented at all
        (smsdispatch.providers.base `Adapter.http_status_decides`); "permanent" is refused.
        """
        if kind in (OutcomeKind.PERMANENT, OutcomeKind.VENDOR_REFUSED):
            kind = OutcomeKind.RETRY
        return cls(
            kind,
            code=code,
            reason=f"{f'undocumented code {code}' if code else 'undocumented answer'}: "
            f"{reason or 'no explanation'}",
            raw=clip_raw(raw),
            retry_after=retry_after,
            undocumented=True,
        )

    def reclassified(self, kind: OutcomeKind) -> Outcome:
        """The class an operator gave the code in the catalog (`code_overrides`):
        a code classified there is no longer undocumented."""
        return replace(self, kind=kind, undocumented=False)


def clip_raw(raw: str | None) -> str | None:
    """The vendor's answer, cut to what the results table keeps."""
    return raw if raw is None or len(raw) <= RAW_LIMIT else raw[:RAW_LIMIT]
