"""`make chaos` checks every fault before its first run."""

from __future__ import annotations

import pytest

from chaos import faults
from chaos.__main__ import Plan, preflight
from chaos.faults import FaultUnavailable, SkewedClock
from chaos.harness import Scheduled


def test_the_schedule_refuses_to_start_when_a_clock_cannot_be_skewed_here(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(faults, "LIBFAKETIME_GLOBS", ())
    plan = Plan("clock", "clock -180 s", lambda: [Scheduled(SkewedClock(-180, index=1))])
    with pytest.raises(FaultUnavailable, match="faketime"):
        preflight([plan], workers=2)
