"""Turning one recipient row into a message ready to store, or saying why not.

The same checks a single message passes (E.164, encoding, the vendor's
maximum length), applied per row with the campaign's template.
"""

from __future__ import annotations

from dataclasses import dataclass

from campaigns.recipients import Row
from campaigns.templates import MissingValue, Template
from config.catalog import ProviderEntry
from producer.validation import InvalidMessage, Validator, normalize_number
from providers.message import Encoding


class RowRejected(ValueError):
    """Why one recipient row cannot become a message."""


@dataclass(frozen=True, slots=True)
class Prepared:
    line: int
    recipient: str  # E.164
    text: str
    encoding: Encoding
    segments: int
    params: list[str] | None  # placeholder values in template order


class RowPreparer:
    def __init__(
        self,
        validator: Validator,
        entry: ProviderEntry,
        template: Template,
        default_region: str | None,
    ) -> None:
        self.validator = validator
        self.entry = entry
        self.template = template
        self.default_region = default_region
        self._constant = None if template.names else template.render({})

    def prepare(self, row: Row) -> Prepared:
        try:
            recipient = normalize_number(row.phone, self.default_region)
        except InvalidMessage as exc:
            raise RowRejected(f"phone {row.phone.strip()!r} {exc.reason}") from None
        if self._constant is not None:
            text, params = self._constant, None
        else:
            try:
                text = self.template.render(row.values)
            except MissingValue as exc:
                raise RowRejected(f"column {exc.name!r} is empty") from None
            params = self.template.values_in_order(row.values)
        try:
            encoding, segments = self.validator.text(self.entry, text)
        except InvalidMessage as exc:
            raise RowRejected(f"the message {exc.reason}") from None
        return Prepared(row.line, recipient, text, encoding, segments, params)
