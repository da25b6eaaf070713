"""A clock tests set by hand: scheduling decisions without waiting."""

from __future__ import annotations

from datetime import datetime, timedelta

from smsdispatch.config.catalog import Catalog
from smsdispatch.config.settings import Settings
from smsdispatch.workers.app import create_app
from smsdispatch.workers.runtime import Runtime


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def runtime(settings: Settings, database_url: str, catalog: Catalog, clock: FakeClock) -> Runtime:
    """A worker runtime on this database whose scheduling clock is `clock`."""
    settings = settings.model_copy(update={"database_url": database_url})
    return Runtime(settings, catalog, create_app(settings), clock=clock)
