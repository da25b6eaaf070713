"""Running a process with its host clock off: libfaketime (Debian's `faketime`)."""

from __future__ import annotations

import shutil

import pytest


def faketime_argv(offset: str) -> list[str]:
    """The prefix that runs a command with its wall clock `offset` off ("-180s").

    Python's monotonic clock is shifted by the same constant (libfaketime
    fakes it too, and Python's sleeps need it faked alike), which changes no
    interval. `make test` installs the package; without it the test fails.
    """
    path = shutil.which("faketime")
    if path is None:
        pytest.fail("faketime is not installed: apt-get install faketime", pytrace=False)
    return [path, "-f", offset]
