"""Cue simulator (skeleton: being written)."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import BaseRoute

from simulators.common import VendorSimulator


class CueSimulator(VendorSimulator):
    name = "cue"

    def routes(self) -> list[BaseRoute]:
        return []

    def fault_response(self, code: str) -> Response:
        raise NotImplementedError

    def throttle_response(self) -> Response:
        raise NotImplementedError
