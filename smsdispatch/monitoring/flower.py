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
  nothing to the workers.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

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


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Flower with basic auth, as smsdispatch runs it.")
    parser.add_argument("--port", type=int, default=int(os.environ.get("FLOWER_PORT", "5555")))
    parser.add_argument("--address", default=os.environ.get("FLOWER_ADDRESS", "127.0.0.1"))
    args = parser.parse_args(argv)
    try:
        env = flower_env(os.environ)
    except FlowerConfigError as exc:
        raise SystemExit(f"flower: {exc}") from None
    # Replace this process, so signals reach Flower itself.
    os.execve(CELERY, flower_argv(port=args.port, address=args.address), env)  # noqa: S606


if __name__ == "__main__":
    main()
