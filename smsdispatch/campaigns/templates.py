"""Message templates with named placeholders: "Hi {name}, your code is {code}".

Our own small syntax instead of `str.format`: a template comes from an
operator or another application, and `str.format` would let it reach into
objects ("{0.__class__}"). Here a placeholder is only `{identifier}`, and
`{{` / `}}` write a literal brace.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from smsdispatch.vocabulary.errors import InputError

TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}|\{|\}")


class TemplateError(InputError, ValueError):
    """The template itself is malformed; says where."""


class MissingValue(InputError, ValueError):
    """A recipient has no value for a placeholder; names it."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no value for {{{name}}}")
        self.name = name


@dataclass(frozen=True, slots=True)
class Template:
    source: str
    # Literal text and placeholder names, alternating: literals at even
    # positions (possibly empty), names at odd ones.
    parts: tuple[str, ...]

    @classmethod
    def parse(cls, source: str) -> Template:
        if not source.strip():
            raise TemplateError("the template is empty")
        parts: list[str] = []
        literal: list[str] = []
        position = 0
        for match in TOKEN.finditer(source):
            literal.append(source[position : match.start()])
            position = match.end()
            token = match.group(0)
            if token in ("{{", "}}"):
                literal.append(token[0])
            elif match.group(1) is not None:
                parts += ["".join(literal), match.group(1)]
                literal = []
            else:
                raise TemplateError(
                    f"unmatched {token!r} at character {match.start() + 1}: a placeholder is "
                    "{name} (letters, digits, underscore); write {{ or }} for a literal brace"
                )
        literal.append(source[position:])
        parts.append("".join(literal))
        return cls(source, tuple(parts))

    @property
    def names(self) -> tuple[str, ...]:
        """Placeholder names in order of first use, each once."""
        return tuple(dict.fromkeys(self.parts[1::2]))

    def render(self, values: Mapping[str, str]) -> str:
        """The text for one recipient; `MissingValue` if a placeholder has none.

        An empty value counts as missing: "Hi , your order..." is a message
        nobody wants sent.
        """
        out: list[str] = []
        for index, part in enumerate(self.parts):
            if index % 2 == 0:
                out.append(part)
                continue
            value = values.get(part)
            if not value:
                raise MissingValue(part)
            out.append(value)
        return "".join(out)

    def values_in_order(self, values: Mapping[str, str]) -> list[str]:
        """The placeholder values in `names` order: Messangi's per-recipient params."""
        return [values[name] for name in self.names]

    def positional(self) -> str | None:
        """The template in Messangi's batch form, "Hi {0}, your code is {1}".

        None when the literal text has braces of its own: Messangi documents
        no escape, so "{0}" written as text would be taken for a placeholder.
        """
        literals = self.parts[0::2]
        if any("{" in text or "}" in text for text in literals):
            return None
        index = {name: i for i, name in enumerate(self.names)}
        return "".join(
            part if i % 2 == 0 else f"{{{index[part]}}}" for i, part in enumerate(self.parts)
        )
