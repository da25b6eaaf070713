"""The campaign's number set: new numbers in, repeats out, first occurrence wins."""

from __future__ import annotations

from smsdispatch.campaigns.numbers import NumberSet


def test_numbers_already_in_the_set_are_not_new() -> None:
    numbers = NumberSet([12125551001, 12125551003])
    assert numbers.add_new([12125551002, 12125551003]) == [True, False]
    assert len(numbers) == 3


def test_a_number_repeated_within_a_list_is_new_only_the_first_time() -> None:
    numbers = NumberSet()
    assert numbers.add_new([5, 7, 5, 7, 9]) == [True, True, False, False, True]
    assert numbers.add_new([9, 1]) == [False, True]


def test_an_empty_list_adds_nothing() -> None:
    numbers = NumberSet([3])
    assert numbers.add_new([]) == []
    assert len(numbers) == 1
