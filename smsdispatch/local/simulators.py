"""Run the simulators on a loopback port, in a thread or in the foreground."""

from __future__ import annotations

import gc

import uvicorn

from smsdispatch.config.settings import Settings
from smsdispatch.local.serve import BackgroundServer
from smsdispatch.simulators.app import build_simulators, create_app
from smsdispatch.simulators.common import VendorSimulator


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


def serve_forever(settings: Settings, host: str, port: int) -> None:
    """`smsdispatch simulate`: serve in the foreground until interrupted,
    posting delivery reports over kept-alive connections."""
    simulators = build_simulators(settings)
    for simulator in simulators.values():
        simulator.report_keepalive = True
    app = create_app(simulators)
    _no_full_collections()
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, backlog=4096)


# The third generation's threshold counts collections of the second: a full
# collection only after this many of them, that is never while serving
# (the first two generations keep CPython's defaults).
_FULL_COLLECTION_AFTER = 1_000_000


def _no_full_collections() -> None:
    """A vendor's clock does not stop: the simulators' must not either.

    Their record grows with every message (each is kept for inspection),
    and CPython's full collection walks all of it: 165 ms with 12,000
    messages, measured by `bench.ceilings`. Requests that arrive during such
    a pause are stamped together when it ends, and the vendor's busiest
    second reads 125 against a ceiling our sender kept at 95 a second.
    So what exists at start is frozen out of collections, and full
    collections are left out; young ones still free short-lived cycles.
    The cost, a cycle that outlives two young collections is kept until the
    process ends, is small beside the record itself.
    """
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, _FULL_COLLECTION_AFTER)
