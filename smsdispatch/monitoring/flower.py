"""How Flower is started, in one place: `make flower`, the demo and the tests run this.

    FLOWER_BASIC_AUTH=admin:long-password python -m smsdispatch.monitoring.flower --port 5555

Choices and why:
- Basic auth is required (`--basic-auth`, Flower's HTTP basic authentication;
  `--auth` is something else: a regex of e-mail addresses for OAuth). The
  credentials reach Flower through its own FLOWER_BASIC_AUTH variable, never
  on the command line, where `ps` would show them to every user of the host.
  FLOWER_UNAUTHENTICATED_API is removed: with it Flower would open its API.
- `--persistent=False`: Flower keeps its task history in memory only, so no
  state file on disk outlives it (the tasks carry message ids only anyway);
  `--max-tasks` bounds that memory.
- `--purge-offline-workers`: a worker host that went away leaves the
  dashboard after five minutes instead of showing as offline for ever.
- The worker's task events are already on (workers/app.py); Flower adds
  nothing to the workers. The maintenance tasks send no events
  (tasks/__init__.py), so Flower's task list holds the sends.
- `/metrics` (Flower's Prometheus text: task names, worker names, counts)
  asks for the same password: Flower 2.2 leaves it open, so the launcher
  runs Flower in this process after wrapping that handler
  (`require_password_for_metrics`). Prometheus scrapes it with `basic_auth`.
  `/healthcheck` stays open on purpose: it answers "OK" and nothing else,
  so a load balancer or an orchestrator probes it without holding the password.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from smsdispatch.vocabulary.errors import SetupError

CELERY = str(Path(sys.executable).parent / "celery")
MAX_TASKS = 10_000
PURGE_OFFLINE_WORKERS_SECONDS = 300


class FlowerConfigError(SetupError, ValueError):
    """Flower would start without a usable password."""


def flower_argv(*, port: int, address: str) -> list[str]:
    """The Flower command line (no secret in it)."""
    return [
        CELERY,
        "-A",
        "smsdispatch.workers.app",
        "flower",
        f"--port={port}",
        f"--address={address}",
        "--persistent=False",
        f"--max-tasks={MAX_TASKS}",
        f"--purge-offline-workers={PURGE_OFFLINE_WORKERS_SECONDS}",
    ]


def flower_env(env: Mapping[str, str]) -> dict[str, str]:
    """The environment for Flower: checks FLOWER_BASIC_AUTH and closes the API."""
    credentials = [c for c in env.get("FLOWER_BASIC_AUTH", "").split(",") if c]
    if not credentials:
        raise FlowerConfigError("set FLOWER_BASIC_AUTH=user:password (Flower needs a password)")
    for credential in credentials:
        user, _, password = credential.partition(":")
        if not user or not password:
            raise FlowerConfigError("FLOWER_BASIC_AUTH must be user:password[,user:password]")
    result = dict(env)
    result.pop("FLOWER_UNAUTHENTICATED_API", None)
    return result


def require_password_for_metrics() -> None:
    """Flower's /metrics handler asks for the basic-auth password, as its
    pages do (`get_current_user` checks the Authorization header and raises
    401 on a missing or wrong one)."""
    from flower.views.monitor import Metrics
    from tornado.web import HTTPError

    def prepare(handler: Any) -> None:
        if not handler.current_user:
            raise HTTPError(401)

    Metrics.prepare = prepare


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Flower with basic auth, as smsdispatch runs it.")
    parser.add_argument("--port", type=int, default=int(os.environ.get("FLOWER_PORT", "5555")))
    parser.add_argument("--address", default=os.environ.get("FLOWER_ADDRESS", "127.0.0.1"))
    args = parser.parse_args(argv)
    try:
        env = flower_env(os.environ)
    except FlowerConfigError as exc:
        raise SystemExit(f"flower: {exc}") from None
    os.environ.clear()
    os.environ.update(env)
    require_password_for_metrics()
    # Flower in this process (so the handler above is the one it serves, and
    # signals reach Flower itself), started as `celery ... flower` would be.
    from celery.bin.celery import main as celery

    sys.argv = flower_argv(port=args.port, address=args.address)
    raise SystemExit(celery())


if __name__ == "__main__":
    main()
