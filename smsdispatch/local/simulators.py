"""Run the simulators on a loopback port, in a thread or in the foreground."""

from __future__ import annotations

import uvicorn

from smsdispatch.config.garbage import no_full_collections
from smsdispatch.config.settings import Settings
from smsdispatch.local.serve import BackgroundServer
from smsdispatch.reports.urls import report_url
from smsdispatch.simulators.app import build_simulators, create_app
from smsdispatch.simulators.common import STANDALONE_REPORT_MIX, Control, VendorSimulator


class SimulatorServer:
    """The simulators served over real HTTP from a background thread.

    Tests hold the `simulators` objects directly (same process) to turn
    knobs and read what each vendor received.
    """

    def __init__(self, settings: Settings, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.simulators: dict[str, VendorSimulator] = build_simulators(settings)
        self._server = BackgroundServer(create_app(self.simulators), host=host, port=port)

    @property
    def root(self) -> str:
        return self._server.root

    def __getitem__(self, vendor: str) -> VendorSimulator:
        return self.simulators[vendor]

    def start(self, timeout: float = 10.0) -> SimulatorServer:
        self._server.start(timeout)
        return self

    def stop(self) -> None:
        self._server.stop()

    def reset(self) -> None:
        for sim in self.simulators.values():
            sim.reset()

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def standalone_simulators(
    settings: Settings, *, reports: bool = True
) -> dict[str, VendorSimulator]:
    """The simulators as `smsdispatch simulate` serves them: posting delivery
    reports over kept-alive connections.

    With `reports` every simulator reports every accepted message in the
    standalone mix (`STANDALONE_REPORT_MIX`), from the start and after a
    reset; Skycore, whose postback URL is an account setting, to this
    installation's report URL (PUBLIC_BASE_URL and REPORT_SECRET).
    """
    simulators = build_simulators(settings)
    for vendor, simulator in simulators.items():
        simulator.report_keepalive = True
        if reports:
            simulator.stand(reports=True, report_mix=STANDALONE_REPORT_MIX)
            if vendor == "skycore":
                simulator.stand(postback_url=report_url(settings, vendor))
    return simulators


def standalone_reports_in_words() -> str:
    """`STANDALONE_REPORT_MIX` and the report delay, as `simulate` announces them."""
    total = sum(STANDALONE_REPORT_MIX.values())
    shares = ", ".join(f"{100 * n / total:g}% {fate}" for fate, n in STANDALONE_REPORT_MIX.items())
    return f"{shares}, {Control().report_delay_seconds:g} s after acceptance"


def serve_forever(settings: Settings, host: str, port: int, *, reports: bool = True) -> None:
    """`smsdispatch simulate`: serve in the foreground until interrupted."""
    app = create_app(standalone_simulators(settings, reports=reports))
    no_full_collections()
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, backlog=4096)
