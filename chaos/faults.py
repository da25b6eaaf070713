"""The faults operators meet, each a small object: inject, then heal.

A fault acts on a running stack (chaos.harness.RunningStack) through the
narrow `Target` interface below, so each fault reads as what an operator
would see: a worker gone, Redis empty, the database unreachable, a vendor
answering 5xx or not at all, a host whose clock is wrong.

`duration` is how long after injection the harness heals the fault (0: the
fault is a moment, like a SIGKILL, and heal does nothing).
"""

from __future__ import annotations

import glob
import signal
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from chaos.proxy import ProxyState
from smsdispatch.simulators.common import VendorSimulator

# Where Debian's `faketime` package puts the library, per architecture.
LIBFAKETIME_GLOBS = (
    "/usr/lib/*/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/local/lib/faketime/libfaketime.so.1",
)


class FaultUnavailable(RuntimeError):
    """This machine cannot inject the fault (a missing system package)."""


class Target(Protocol):
    """What a fault may touch in a running stack."""

    def kill_worker(self, index: int, sig: int) -> None:
        """Signal worker `index`'s process group and wait until it is gone."""

    def replace_worker(self, index: int) -> None:
        """Start a new worker in slot `index`, as a supervisor would."""

    def flush_redis(self) -> None: ...

    def stop_redis(self) -> None:
        """SIGKILL the redis-server: everything in it is gone."""

    def start_redis(self) -> None:
        """A new, empty redis-server on the same port."""

    def database_down(self, mode: ProxyState) -> None: ...

    def database_up(self) -> None: ...

    def simulator(self, vendor: str) -> VendorSimulator: ...


class Fault(ABC):
    name: str = "fault"
    duration: float = 0.0
    # Whether the fault kills a worker holding claimed rows: DESIGN.md's
    # invariant 3 lets a message be sent twice only when its worker died
    # between the vendor's answer and the commit, and only where the vendor
    # can neither deduplicate nor be asked. Every other fault must cause none.
    kills_in_flight: bool = False

    @abstractmethod
    def inject(self, target: Target) -> None: ...

    def heal(self, target: Target) -> None:  # noqa: B027 (most faults are a moment)
        """Undo the fault; nothing for a fault that is a moment."""

    def worker_env(self, index: int) -> dict[str, str]:
        """Environment for worker `index` when it starts (a fault that lives in a process)."""
        return {}

    def __str__(self) -> str:
        return self.name


@dataclass
class KillWorker(Fault):
    """SIGKILL a worker's whole process group mid-batch; a replacement starts at once.

    Nothing in the dying worker runs: no task is acknowledged or rejected, its
    claimed rows stay in `sending` and its vendor answers are gone with it.
    """

    index: int = 0

    def __post_init__(self) -> None:
        self.name = f"SIGKILL worker {self.index}"
        self.kills_in_flight = True

    def inject(self, target: Target) -> None:
        target.kill_worker(self.index, signal.SIGKILL)
        target.replace_worker(self.index)


@dataclass
class FlushRedis(Fault):
    """FLUSHALL: every queued Celery message, booking and pause disappears."""

    name: str = "Redis FLUSHALL"

    def inject(self, target: Target) -> None:
        target.flush_redis()


@dataclass
class RestartRedis(Fault):
    """The redis-server killed and started again empty, `down_seconds` later."""

    down_seconds: float = 0.0

    def __post_init__(self) -> None:
        self.name = "Redis restarted empty"
        if self.down_seconds:
            self.name += f" ({self.down_seconds:g} s down)"
        self.duration = self.down_seconds

    def inject(self, target: Target) -> None:
        target.stop_redis()
        if not self.down_seconds:
            target.start_redis()

    def heal(self, target: Target) -> None:
        if self.down_seconds:
            target.start_redis()


@dataclass
class DatabaseUnreachable(Fault):
    """PostgreSQL unreachable for `seconds`: connections reset and refused
    (cut), or accepted and never answered (hang)."""

    seconds: float = 10.0
    mode: ProxyState = ProxyState.CUT

    def __post_init__(self) -> None:
        how = "refused" if self.mode is ProxyState.CUT else "hanging"
        self.name = f"PostgreSQL unreachable {self.seconds:g} s ({how})"
        self.duration = self.seconds

    def inject(self, target: Target) -> None:
        target.database_down(self.mode)

    def heal(self, target: Target) -> None:
        target.database_up()


@dataclass
class VendorErrors(Fault):
    """The vendors answer every send with `fail_with` (HTTP 503) for `seconds`."""

    vendors: tuple[str, ...] = ()
    seconds: float = 30.0
    fail_with: str = "http:503"

    def __post_init__(self) -> None:
        who = ", ".join(self.vendors)
        self.name = f"{who} answer {self.fail_with.removeprefix('http:')} for {self.seconds:g} s"
        self.duration = self.seconds

    def inject(self, target: Target) -> None:
        for vendor in self.vendors:
            control = target.simulator(vendor).state.control
            control.fail_with, control.error_rate = self.fail_with, 1.0

    def heal(self, target: Target) -> None:
        for vendor in self.vendors:
            target.simulator(vendor).state.control.error_rate = 0.0


@dataclass
class VendorHang(Fault):
    """For `seconds` the vendors take each message and then answer nothing for
    `seconds`: past our read timeout, the send is ambiguous."""

    vendors: tuple[str, ...] = ()
    seconds: float = 10.0

    def __post_init__(self) -> None:
        self.name = f"{', '.join(self.vendors)} hang for {self.seconds:g} s"
        self.duration = self.seconds

    def inject(self, target: Target) -> None:
        for vendor in self.vendors:
            control = target.simulator(vendor).state.control
            control.hang_seconds, control.hang_next = self.seconds, 10**9

    def heal(self, target: Target) -> None:
        for vendor in self.vendors:
            target.simulator(vendor).state.control.hang_next = 0


@dataclass
class SkewedClock(Fault):
    """Worker `index` runs with its wall clock `offset_seconds` off (libfaketime).

    The skew is there from the worker's start; the other workers, beat, Redis
    and PostgreSQL keep the right time. The monotonic clock is left alone:
    it only times a process's own sleeps, and faking it would go negative on
    a machine up for less than the offset.
    """

    offset_seconds: int = -180
    index: int = 1
    library: Path | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.name = f"worker {self.index} clock {self.offset_seconds:+d} s"

    def inject(self, target: Target) -> None:
        """Nothing to do at a moment: the skewed worker was started skewed."""

    def worker_env(self, index: int) -> dict[str, str]:
        if index != self.index:
            return {}
        library = self.library or libfaketime()
        return {
            "LD_PRELOAD": str(library),
            "FAKETIME": f"{self.offset_seconds:+d}",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        }


def libfaketime() -> Path:
    """The preloadable library of Debian's `faketime` package, or a clear error."""
    for pattern in LIBFAKETIME_GLOBS:
        found = sorted(glob.glob(pattern))
        if found:
            return Path(found[0])
    raise FaultUnavailable(
        "libfaketime.so.1 not found: a skewed worker clock needs Debian's `faketime` "
        "package (scripts/services.sh installs it; or: apt-get install faketime)"
    )
