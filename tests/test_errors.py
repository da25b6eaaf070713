"""The exception tree in smsdispatch/vocabulary/errors.py is whole and drawn.

Found by reading the source, not by importing everything: a new exception
class that forgets its kind, or is left out of the drawing, fails here.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import re
from pathlib import Path

import pytest

from smsdispatch.vocabulary import errors
from smsdispatch.vocabulary.errors import SmsdispatchError

PACKAGE = Path(errors.__file__).resolve().parent.parent
# The fake vendors' own refusals stand for the vendor's code, not ours.
OUTSIDE = {"simulators"}
KINDS = {
    "SmsdispatchError",
    "InputError",
    "NotFoundError",
    "ConflictError",
    "SetupError",
    "PeerError",
    "PeerUnavailable",
    "PeerProtocolError",
}


def _is_exception_base(base: ast.expr) -> bool:
    name = base.id if isinstance(base, ast.Name) else None
    if name is None:
        return False
    standard = getattr(builtins, name, None)
    return name in KINDS or (isinstance(standard, type) and issubclass(standard, BaseException))


def exception_classes() -> list[tuple[str, str]]:
    """(module, class) for every class in smsdispatch/ that derives from an
    exception by a name in its own module (a kind, or a standard one)."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] in OUTSIDE or relative == Path("vocabulary/errors.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(map(_is_exception_base, node.bases)):
                found.append((relative.as_posix(), node.name))
    return found


def drawn_parents() -> dict[str, str]:
    """Each class in the docstring's drawing -> the class drawn above it."""
    parents: dict[str, str] = {}
    open_at: list[tuple[int, str]] = []  # (column, name) of the branches above
    for line in (errors.__doc__ or "").splitlines():
        branch = re.search(r"[├└]── (\w+)", line)
        if branch:
            column, name = branch.start(), branch.group(1)
        elif line.strip().startswith("SmsdispatchError "):
            column, name = -1, "SmsdispatchError"
        else:
            continue
        while open_at and open_at[-1][0] >= column:
            open_at.pop()
        if open_at:
            parents[name] = open_at[-1][1]
        open_at.append((column, name))
    return parents


def _module(path: str) -> str:
    return "smsdispatch." + path.removesuffix(".py").replace("/", ".")


def test_the_drawing_matches_the_classes() -> None:
    concrete = {n: getattr(importlib.import_module(_module(p)), n) for p, n in exception_classes()}
    parents = drawn_parents()
    assert set(parents) == (KINDS - {"SmsdispatchError"}) | set(concrete)
    for name, parent in parents.items():
        cls = concrete.get(name) or getattr(errors, name)
        assert getattr(errors, parent) in cls.__bases__, f"{name} is drawn under {parent}"


def test_every_exception_class_is_found() -> None:
    assert len(exception_classes()) >= 16


@pytest.mark.parametrize(("path", "name"), exception_classes())
def test_every_exception_class_has_a_kind_and_is_drawn(path: str, name: str) -> None:
    module = importlib.import_module(_module(path))
    cls = getattr(module, name)
    kinds = [k for k in cls.__mro__ if k.__module__ == errors.__name__]
    assert issubclass(cls, SmsdispatchError)
    assert kinds[0] is not SmsdispatchError, f"{name} is given no kind below the base"
    drawn = [line for line in (errors.__doc__ or "").splitlines() if f" {name} " in line]
    assert drawn, f"{name} is missing from the tree in vocabulary/errors.py"
    assert path in drawn[0], f"{name} is drawn without its module {path}"
