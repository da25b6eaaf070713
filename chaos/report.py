"""The reliability table: one per vendor, each fault a row against the baseline.

Written to RELIABILITY.md beside BENCHMARKS.md with the command, the date
and the machine, so every figure can be reproduced by one command.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from chaos.harness import Harness, RunResult
from chaos.tally import ASKABLE, VendorTally, violations
from smsdispatch.local.processes import WORKER_POOL

RELIABILITY = Path(__file__).resolve().parent.parent / "RELIABILITY.md"

COLUMNS = (
    "run",
    "submitted",
    "received",
    "lost",
    "duplicated (in flight)",
    "unknown",
    "failed",
    "unsettled",
    "untracked",
    "throttled",
    "s to final (baseline)",
    "verdict",
)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    system = f"{platform.system()} {platform.release()}"
    return f"{os.cpu_count()} cores ({cpu}), {system}, Python {platform.python_version()}"


def code_version() -> str:
    """The commit measured, so a figure can be told from a later fix's."""
    root = RELIABILITY.parent
    git = shutil.which("git")
    if git is None:
        return "unknown (no git)"
    try:
        commit = subprocess.run(  # noqa: S603 (our own fixed argv)
            [git, "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(  # noqa: S603 (our own fixed argv)
            [git, "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{commit} with uncommitted changes" if dirty else commit


def _cells(result: RunResult, tally: VendorTally) -> list[str]:
    base = result.baseline_seconds.get(tally.vendor)
    final = "-" if tally.seconds_to_final is None else f"{tally.seconds_to_final:.1f}"
    if base is not None:
        final += f" ({base:.1f})"
    broken = violations(tally, baseline_seconds=base, allowance_seconds=result.allowance_seconds)
    verdict = "; ".join(b.removeprefix(f"{tally.vendor}: ") for b in broken) or "ok"
    return [
        result.name,
        str(tally.submitted),
        str(tally.received),
        str(tally.lost),
        f"{tally.duplicated} ({tally.in_flight})",
        str(tally.unknown),
        str(tally.failed),
        str(tally.unsettled),
        str(tally.untracked),
        str(tally.throttled),
        final,
        verdict,
    ]


def _vendor_title(vendor: str) -> str:
    how = ASKABLE.get(vendor, "cannot be asked: duplicates tolerated up to those in flight")
    return f"{vendor} ({how})"


def schedules(results: Sequence[RunResult]) -> list[str]:
    """What each run did, named as the tables name it."""
    return [f"{r.name}: {'; '.join(r.schedule) or 'no faults'}" for r in results]


def markdown_tables(results: Sequence[RunResult], vendors: Sequence[str]) -> str:
    parts = []
    for vendor in vendors:
        rows = [_cells(r, r.tallies[vendor]) for r in results if vendor in r.tallies]
        lines = [
            f"### {_vendor_title(vendor)}",
            "",
            "| " + " | ".join(COLUMNS) + " |",
            "|" + "---|" * len(COLUMNS),
            *("| " + " | ".join(cells) + " |" for cells in rows),
        ]
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def text_tables(results: Sequence[RunResult], vendors: Sequence[str]) -> str:
    parts = []
    for vendor in vendors:
        rows = [COLUMNS, *(_cells(r, r.tallies[vendor]) for r in results if vendor in r.tallies)]
        widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS) - 1)]
        lines = [_vendor_title(vendor)]
        for row in rows:
            lines.append(
                "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False))
                + "  "
                + row[-1]
            )
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def figures(results: Sequence[RunResult]) -> list[dict[str, object]]:
    return [r.as_dict() for r in results]


def write_reliability(
    results: Sequence[RunResult], vendors: Sequence[str], harness: Harness, command: str
) -> Path:
    t = harness.timings
    load = results[0].load
    failing = [(r.name, v) for r in results for v in r.violations()]
    summary = (
        "\n".join(f"- {name}: {v}" for name, v in failing)
        if failing
        else "No run lost, duplicated beyond what was in flight, or stalled."
    )
    crashes = "\n".join(f"- {r.name}: {e}" for r in results for e in r.exits) or (
        "No worker or beat process exited by itself."
    )
    body = f"""# Reliability under faults

Every figure here was written by `chaos/` (`make chaos`); rerun the command
shown to reproduce it. The real pipeline (producer, {load.workers} Celery
workers ({WORKER_POOL} pool, {load.concurrency} tasks at once), beat, a private Redis, PostgreSQL
behind a TCP proxy, the five vendor simulators) runs each fault on its own
and a mixed schedule; then what each vendor received is counted against the
database (chaos/tally.py says what each column means).

- command: `{command}`
- date: {datetime.now(UTC):%Y-%m-%d %H:%M UTC}
- code: {code_version()}
- machine: {machine()}
- load: {load.per_vendor} messages per vendor, each to its own number;
  vendor latency {load.latency_seconds * 1000:.0f} ms; the shipped catalog's
  limits; retries: 20 attempts, back-off 0.5 s doubling to 5 s
- deadlines: sending {t.sending_deadline:g} s, requeue {t.requeue_after:g} s,
  HTTP read {t.http_read_timeout:g} s / total {t.http_total_timeout:g} s,
  reconciliation every {t.reconcile_interval:g} s;
  a run is late when a vendor's time to final exceeds its baseline by more
  than the faults' durations + {t.margin:g} s

A run fails on any message lost; on a duplicate at Cue (it deduplicates our
reference) or Restcomm (it can be asked); elsewhere on more duplicates than
rows a killed worker had in flight (none after any other fault); and on a
stall (a vendor's messages final later than its baseline plus the faults'
durations plus the margin, or "unsettled": still `queued` or `sending` when
the run ended). Also counted, not judged here: "untracked", messages the vendor took
whose row lacks the vendor's tracking id (delivery reports cannot find
them), and "throttled", requests the vendor refused for its own ceiling
(SMSBuddy's 1000 a minute: invariant 2).

## Runs

{chr(10).join(f"- {line}" for line in schedules(results))}

## Crashes

{crashes}

## What failed

{summary}

## Per vendor

{markdown_tables(results, vendors)}

<details><summary>raw figures (JSON)</summary>

```json
{json.dumps(figures(results), indent=2, default=str)}
```
</details>
"""
    RELIABILITY.write_text(body)
    return RELIABILITY
