"""Writing figures into BENCHMARKS.md: one section per benchmark, replaced in place."""

from __future__ import annotations

import json
import os
import platform
import re
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"
HEADER = (
    "# Benchmarks\n\nEvery figure here was written by a script in `bench/`; "
    "rerun the command shown to reproduce it.\n"
)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    system = f"{platform.system()} {platform.release()}"
    return f"{os.cpu_count()} cores ({cpu}), {system}, Python {platform.python_version()}"


def write_section(name: str, title: str, figures: dict[str, Any], table: str, notes: str) -> None:
    """Replace (or add) the section between this benchmark's markers."""
    command = "python -m " + " ".join([f"bench.{name}", *(shlex.quote(a) for a in sys.argv[1:])])
    body = (
        f"<!-- bench:{name}:start -->\n## {title}\n\n"
        f"- command: `{command}`\n- date: {datetime.now(UTC):%Y-%m-%d %H:%M UTC}\n"
        f"- machine: {machine()}\n\n{table}\n\n{notes}\n\n"
        f"<details><summary>raw figures (JSON)</summary>\n\n```json\n"
        f"{json.dumps(figures, indent=2)}\n```\n</details>\n<!-- bench:{name}:end -->\n"
    )
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else HEADER
    pattern = re.compile(rf"<!-- bench:{name}:start -->.*?<!-- bench:{name}:end -->\n", re.S)
    text = pattern.sub(lambda _: body, text) if pattern.search(text) else text + "\n" + body
    BENCHMARKS.write_text(text)
