"""GSM 03.38 detection and segment counting.

A text that fits the GSM-7 default alphabet (with its extension table, whose
characters cost two septets) goes as 160 characters per single SMS and 153 per
segment of a concatenated one; anything else goes as UCS-2: 70 and 67, counted
in UTF-16 code units, so an emoji costs two.
"""

from __future__ import annotations

import math

from smsdispatch.vocabulary.message import Encoding

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
GSM7 = GSM7_BASIC | GSM7_EXTENSION

SINGLE = {Encoding.GSM7: 160, Encoding.UCS2: 70}
PER_SEGMENT = {Encoding.GSM7: 153, Encoding.UCS2: 67}


def detect_encoding(text: str) -> Encoding:
    if GSM7.issuperset(text):
        return Encoding.GSM7
    return Encoding.UCS2


def units(text: str, encoding: Encoding) -> int:
    """Length in the encoding's units: septets for GSM-7, UTF-16 units for UCS-2."""
    if encoding is Encoding.GSM7:
        # Counting each of the ten extension characters runs in C: a campaign
        # import counts a million texts.
        return len(text) + sum(text.count(ch) for ch in GSM7_EXTENSION)
    return len(text.encode("utf-16-le")) // 2


def segment_count(text: str, encoding: Encoding | None = None) -> int:
    encoding = encoding or detect_encoding(text)
    length = units(text, encoding)
    if length <= SINGLE[encoding]:
        return 1
    return math.ceil(length / PER_SEGMENT[encoding])
