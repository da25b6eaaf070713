"""Campaign templates: named placeholders, literal braces, Messangi's positional form."""

from __future__ import annotations

import pytest

from smsdispatch.campaigns.templates import MissingValue, Template, TemplateError


def test_placeholders_are_filled_per_recipient() -> None:
    template = Template.parse("Hi {name}, your code is {code}.")
    assert template.render({"name": "Ana", "code": "4411"}) == "Hi Ana, your code is 4411."


def test_doubled_braces_are_literal_braces() -> None:
    assert Template.parse("{{not}} {x}").render({"x": "1"}) == "{not} 1"


def test_an_unmatched_brace_is_reported_with_its_position() -> None:
    with pytest.raises(TemplateError, match="unmatched '\\{' at character 4"):
        Template.parse("Hi {0.__class__}")


def test_an_empty_template_is_refused() -> None:
    with pytest.raises(TemplateError, match="empty"):
        Template.parse("   ")


def test_an_empty_value_counts_as_missing() -> None:
    with pytest.raises(MissingValue, match=r"\{name\}"):
        Template.parse("Hi {name}").render({"name": ""})


def test_names_are_listed_once_in_order_of_first_use() -> None:
    assert Template.parse("{b} {a} {b}").names == ("b", "a")


def test_messangi_form_numbers_placeholders_in_order_of_first_use() -> None:
    template = Template.parse("Hi {name}, {amount} due; thanks {name}")
    assert template.positional() == "Hi {0}, {1} due; thanks {0}"
    assert template.values_in_order({"amount": "$5", "name": "Bo"}) == ["Bo", "$5"]


def test_messangi_form_is_not_used_when_the_text_has_literal_braces() -> None:
    assert Template.parse("{{0}} is literal, {name}").positional() is None
