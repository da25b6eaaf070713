"""What an adapter is given to send: one message, already validated."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Encoding(StrEnum):
    GSM7 = "gsm7"  # GSM 03.38 default alphabet: 160 per single SMS, 153 per segment
    UCS2 = "ucs2"  # anything else: 70 per single SMS, 67 per segment


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    id: int
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

    @property
    def reference(self) -> str:
        """Our id as the vendor's reference field, so a resend can be recognised."""
        return str(self.id)

    @property
    def recipient_digits(self) -> str:
        """International format without '+' or '00', as several vendors want it."""
        return self.recipient.removeprefix("+")
