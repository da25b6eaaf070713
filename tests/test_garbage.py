"""Collector tuning for the servers, each checked in a fresh interpreter
(changing it here would change it for the whole test run)."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import gc, json
from smsdispatch.config.garbage import {function}
before = gc.get_freeze_count()
{function}()
full = gc.get_count()
# A growing record, as the simulators keep: by default this brings full
# collections (three on CPython 3.11).
kept = []
for _ in range(300_000):
    a = []; a.append(a); kept.append(a)
print(json.dumps({{"frozen": gc.get_freeze_count() - before, "thresholds": gc.get_threshold(),
                   "full_collections": gc.get_stats()[2]["collections"]}}))
"""


def probe(function: str) -> dict[str, object]:
    code = PROBE.format(function=function)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return dict(json.loads(out.stdout))


def test_api_and_workers_freeze_what_start_up_built_and_collect_young_objects_less_often() -> None:
    found = probe("collect_less")
    assert int(str(found["frozen"])) > 0
    assert found["thresholds"] == [10_000, 50, 100]


def test_the_simulators_never_stop_for_a_full_collection() -> None:
    found = probe("no_full_collections")
    assert int(str(found["frozen"])) > 0
    assert found["full_collections"] == 0
