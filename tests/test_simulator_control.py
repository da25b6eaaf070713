"""The simulators' control endpoint: knobs set over HTTP behave as set in process."""

from __future__ import annotations

import httpx

from smsdispatch.local.simulators import SimulatorServer
from smsdispatch.simulators.common import Ceiling, ReportMix


def test_nested_knobs_posted_over_http_keep_their_types(simulators: SimulatorServer) -> None:
    response = httpx.post(
        f"{simulators.root}/_sim/smsbuddy/control",
        json={"reports": True, "report_mix": {"delivered": 1, "expired": 3}},
    )
    assert response.status_code == 200
    control = simulators["smsbuddy"].state.control
    assert control.reports is True
    assert control.report_mix == ReportMix(delivered=1, expired=3)
    # The vendor's documented ceiling is kept, as a ceiling, not a dict.
    assert control.ceiling == Ceiling(count=1000, per_seconds=60)
