"""GSM-7 versus UCS-2 and segment counts (160/153 and 70/67)."""

from __future__ import annotations

import pytest

from smsdispatch.producer.encoding import detect_encoding, segment_count
from smsdispatch.vocabulary.message import Encoding


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
    ],
)
def test_gsm7_segments_are_160_single_and_153_concatenated(text: str, segments: int) -> None:
    assert detect_encoding(text) is Encoding.GSM7
    assert segment_count(text) == segments


def test_gsm7_extension_characters_count_twice() -> None:
    assert segment_count("€" * 80) == 1
    assert segment_count("€" * 81) == 2


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("ж" * 70, 1),
        ("ж" * 71, 2),
        ("ж" * 134, 2),
        ("ж" * 135, 3),
    ],
)
def test_ucs2_segments_are_70_single_and_67_concatenated(text: str, segments: int) -> None:
    assert detect_encoding(text) is Encoding.UCS2
    assert segment_count(text) == segments


def test_an_emoji_takes_two_ucs2_units() -> None:
    assert segment_count("😀" * 35) == 1
    assert segment_count("😀" * 36) == 2


def test_one_character_outside_gsm7_makes_the_whole_text_ucs2() -> None:
    assert detect_encoding("Hello ✓") is Encoding.UCS2
