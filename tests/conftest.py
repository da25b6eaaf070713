"""Fixtures shared by every test: settings, the catalog, the simulators."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from config.catalog import Catalog, load_catalog
from config.settings import DEFAULT_CATALOG, Settings
from simulators.app import pointed_at
from simulators.server import SimulatorServer
from tests.settings import make_settings


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog(DEFAULT_CATALOG)


@pytest.fixture(scope="session")
def simulator_server() -> Iterator[SimulatorServer]:
    with SimulatorServer(make_settings()) as server:
        yield server


@pytest.fixture
def simulators(simulator_server: SimulatorServer) -> SimulatorServer:
    """The running simulators, with a clean record and default knobs."""
    simulator_server.reset()
    return simulator_server


@pytest.fixture
def settings(simulators: SimulatorServer) -> Settings:
    """Test settings with every vendor pointed at the simulators."""
    return pointed_at(make_settings(), simulators.root)
