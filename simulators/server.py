"""Run the simulators on a loopback port, in a thread or in the foreground."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from config.settings import Settings
from simulators.app import build_simulators, create_app
from simulators.common import VendorSimulator


class SimulatorServer:
    """The simulators served over real HTTP from a background thread.

    Tests hold the `simulators` objects directly (same process) to turn
    knobs and read what each vendor received.
    """

    def __init__(self, settings: Settings, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.simulators: dict[str, VendorSimulator] = build_simulators(settings)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.host, self.port = self._socket.getsockname()[:2]
        config = uvicorn.Config(
            create_app(self.simulators),
            log_level="warning",
            lifespan="off",
            access_log=False,
            backlog=4096,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name="simulators",
            daemon=True,
        )

    @property
    def root(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __getitem__(self, vendor: str) -> VendorSimulator:
        return self.simulators[vendor]

    def start(self, timeout: float = 10.0) -> SimulatorServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the simulators did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()

    def reset(self) -> None:
        for sim in self.simulators.values():
            sim.reset()

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_forever(settings: Settings, host: str, port: int) -> None:
    """`smsdispatch simulate`: serve in the foreground until interrupted."""
    app = create_app(build_simulators(settings))
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, backlog=4096)
