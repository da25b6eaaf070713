"""What an adapter is given to send: one message, already validated."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

# Our reference for a message, as the database draws it (smsdispatch.store.models
# `RandomReference`): 32 lowercase hex digits, 122 or 128 random bits.
# Alphanumeric, as Messangi's externalId must be.
REFERENCE = re.compile(r"[0-9a-f]{32}")


class Encoding(StrEnum):
    GSM7 = "gsm7"  # GSM 03.38 default alphabet: 160 per single SMS, 153 per segment
    UCS2 = "ucs2"  # anything else: 70 per single SMS, 67 per segment


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    id: int
    # Our reference for this message at the vendor, random and unique across
    # installations and time (DESIGN invariant 3): never derived from `id`,
    # which a second database hands out again.
    reference: str
    recipient: str  # E.164 with the leading '+'
    sender: str
    text: str
    encoding: Encoding = Encoding.GSM7
    segments: int = 1
    # A campaign message: its template in Messangi's positional form ("Hi {0}")
    # and this recipient's values, which `text` is the template filled with.
    # A vendor with a template batch endpoint sends many recipients at once.
    template: str | None = None
    params: tuple[str, ...] = ()
    # An earlier send of this message may have reached the vendor without our
    # hearing the answer (a timeout, a worker killed): only then can a vendor
    # that rejects a repeated reference (Cue's -7) mean "already accepted".
    reference_in_doubt: bool = False

    @property
    def recipient_digits(self) -> str:
        """International format without '+' or '00', as several vendors want it."""
        return self.recipient.removeprefix("+")


def new_reference() -> str:
    """A reference drawn in Python, like the database's: for messages built
    outside the database (benchmarks of the adapters alone, tests)."""
    return secrets.token_hex(16)


def is_reference(value: str) -> bool:
    return REFERENCE.fullmatch(value) is not None
