"""All five vendor simulators in one ASGI app, one mount per vendor.

/<vendor>/...          the vendor's documented API
/_sim/<vendor>/...     received, stats, control, reset
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Mount

from smsdispatch.config.settings import Settings
from smsdispatch.simulators.common import VendorSimulator
from smsdispatch.simulators.cue import CueSimulator
from smsdispatch.simulators.messangi import MessangiSimulator
from smsdispatch.simulators.restcomm import RestcommSimulator
from smsdispatch.simulators.skycore import SkycoreSimulator
from smsdispatch.simulators.smsbuddy import SMSBuddySimulator

SIMULATOR_CLASSES: tuple[type[VendorSimulator], ...] = (
    CueSimulator,
    MessangiSimulator,
    SMSBuddySimulator,
    RestcommSimulator,
    SkycoreSimulator,
)

# Where each vendor's base URL points inside the app: the part of the real
# base URL after the host (see smsdispatch.config.settings for the real ones).
BASE_PATHS: dict[str, str] = {
    "cue": "/cue",
    "messangi": "/messangi/raven",
    "smsbuddy": "/smsbuddy/api/v1",
    "restcomm": "/restcomm/2012-04-24",
    "skycore": "/skycore/API",
}


def build_simulators(settings: Settings) -> dict[str, VendorSimulator]:
    return {cls.name: cls(settings) for cls in SIMULATOR_CLASSES}


def create_app(simulators: dict[str, VendorSimulator]) -> Starlette:
    routes = []
    for name, sim in simulators.items():
        routes.append(Mount(f"/{name}", routes=sim.routes()))
        routes.append(Mount(f"/_sim/{name}", routes=sim.control_routes()))

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        for sim in simulators.values():
            await sim.close()

    return Starlette(routes=routes, exception_handlers={ClientDisconnect: _gone}, lifespan=lifespan)


async def _gone(_: Request, __: Exception) -> Response:
    """The client went away before its request was read (a worker killed
    mid-request): nothing to answer, and nothing was accepted."""
    return Response(status_code=499)


def base_urls(root: str) -> dict[str, str]:
    """Each vendor's base URL when the simulators listen at `root`."""
    root = root.rstrip("/")
    return {name: root + path for name, path in BASE_PATHS.items()}


def pointed_at(settings: Settings, root: str) -> Settings:
    """A copy of `settings` whose vendor base URLs point at the simulators."""
    update = {
        name: getattr(settings, name).model_copy(update={"base_url": url})
        for name, url in base_urls(root).items()
    }
    return settings.model_copy(update=update)
