"""What schemathesis must know to write valid requests to the API.

The OpenAPI document says some rules in words where JSON Schema cannot state
them; this module teaches them to schemathesis's generator:

- the format "phone" of a recipient (a number valid for its country, which
  no pattern can say): valid numbers from libphonenumber's examples;
- a recipient list (text/csv): a header row naming `phone_column`, then
  rows of numbers and names;
- a campaign's end after its start, when a body gives both.

The contract test (tests/test_api_contract.py) imports it; the schemathesis
CLI loads it with `SCHEMATHESIS_HOOKS=tests.contract_hooks` from the
repository's root (on PYTHONPATH), as the README's "The API contract" shows.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

import phonenumbers
import schemathesis
from hypothesis import strategies as st

from smsdispatch.api.schemas import PHONE_FORMAT, URL_FORMAT

NUMBER_TYPES = (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE)
RECIPIENTS = "/v1/campaigns/{campaign_id}/recipients"
# Operations whose body may give both a start and an end.
WINDOWS = {"/v1/campaigns", "/v1/campaigns/{campaign_id}/schedule"}


def example_numbers() -> list[str]:
    """libphonenumber's example number of each region and type, in E.164."""
    found = {
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        for region in sorted(phonenumbers.SUPPORTED_REGIONS)
        for kind in NUMBER_TYPES
        if (number := phonenumbers.example_number_for_type(region, kind)) is not None
    }
    return sorted(found)


def phone_numbers() -> st.SearchStrategy[str]:
    """Valid numbers written either way the format allows: +<digits> or 00<digits>."""
    numbers = st.sampled_from(example_numbers())
    return numbers | numbers.map(lambda n: "00" + n[1:])


@st.composite
def recipient_lists(draw: st.DrawFn) -> bytes:
    """A CSV with the columns `phone` and `name`, one row per recipient."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["phone", "name"])
    names = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=20)
    for _ in range(draw(st.integers(0, 5))):
        writer.writerow([draw(phone_numbers()), draw(names)])
    return out.getvalue().encode()


schemathesis.openapi.format(PHONE_FORMAT, phone_numbers())
# Callback URLs to a loopback receiver: the contract test allows private
# addresses (CALLBACK_ALLOW_PRIVATE), as a test receiver needs; a public
# host would need DNS, which a test cannot count on.
schemathesis.openapi.format(
    URL_FORMAT,
    st.builds(
        "http://127.0.0.1:{}/{}".format,
        st.integers(1024, 65535),
        st.from_regex(r"[a-z0-9/_-]{0,20}", fullmatch=True),
    ),
)
schemathesis.openapi.media_type("text/csv", recipient_lists())


@schemathesis.hook
def map_case(context: schemathesis.HookContext, case: Any) -> Any:
    """A recipient list's `phone_column` names a column its header has."""
    if case.operation.path == RECIPIENTS and isinstance(case.body, bytes | str):
        text = case.body.decode(errors="replace") if isinstance(case.body, bytes) else case.body
        header = [name.strip() for name in next(csv.reader(io.StringIO(text)), [])]
        query = case.query if isinstance(case.query, dict) else {}
        if header and query.get("phone_column", "phone") not in header:
            case.query = {**query, "phone_column": header[0]}
    return case


@schemathesis.hook
def filter_case(context: schemathesis.HookContext, case: Any) -> bool:
    """A body that gives a start and an end gives the end after the start."""
    if case.operation.path not in WINDOWS or not isinstance(case.body, dict):
        return True
    start, end = case.body.get("start_at"), case.body.get("end_at")
    if not (isinstance(start, str) and isinstance(end, str)):
        return True
    try:
        return datetime.fromisoformat(end) > datetime.fromisoformat(start)
    except (ValueError, TypeError):
        return True  # not times at all: a request the API must refuse anyway
