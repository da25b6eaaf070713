"""httpx's default pool versus the aiohttp pool under it, measured in one run.

The question behind `smsdispatch/providers/transport.py`: how much client CPU does one
vendor call cost, and how many calls per second does one process make, with
1 and with 50 requests in flight? Both transports send the same Skycore
requests to the same simulator process, alternating, several rounds each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.report import write_section
from smsdispatch.config.catalog import load_catalog
from smsdispatch.config.settings import Settings
from smsdispatch.local.environment import demo_credentials, stack_env
from smsdispatch.local.processes import free_port, simulators_process, wait_http
from smsdispatch.providers.registry import build_adapter
from smsdispatch.providers.transport import vendor_client
from smsdispatch.simulators.app import pointed_at
from smsdispatch.vocabulary.message import OutboundMessage, new_reference

TRANSPORTS = ("httpcore (httpx default)", "aiohttp (VendorTransport)")


def make_client(kind: str, in_flight: int) -> httpx.AsyncClient:
    if kind.startswith("aiohttp"):
        return vendor_client(connect_timeout=5, read_timeout=30, max_connections=200)
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    return httpx.AsyncClient(timeout=httpx.Timeout(30, connect=5), limits=limits)


async def measure(kind: str, settings: Settings, in_flight: int, total: int) -> dict[str, float]:
    catalog = load_catalog(settings.catalog_path)
    async with make_client(kind, in_flight) as client:
        adapter = build_adapter("skycore", settings, client, catalog)
        sender = settings.skycore.default_sender
        messages = [
            OutboundMessage(i, new_reference(), f"+1202555{i % 10000:04d}", sender, f"t{i}")
            for i in range(total)
        ]
        await adapter.send(messages[:in_flight])  # open the connections
        cpu, wall = time.process_time(), time.perf_counter()
        for start in range(0, total, in_flight):
            await adapter.send(messages[start : start + in_flight])
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"msg_per_s": total / wall, "client_cpu_ms_per_request": 1000 * cpu / total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="smsdispatch-bench-"))
    port = free_port()
    root = f"http://127.0.0.1:{port}"
    credentials = demo_credentials()
    env = stack_env(
        redis_url="redis://unused",
        database_url="sqlite://",
        simulators_root=root,
        credentials=credentials,
    )
    sim = simulators_process(env, workdir, port).start()
    try:
        wait_http(f"{root}/_sim/skycore/stats")
        key = credentials["SKYCORE__API_KEY"]
        settings = pointed_at(Settings(_env_file=None, skycore={"api_key": key}), root)
        results: dict[str, Any] = {}
        for in_flight in (1, 50):
            samples: dict[str, list[dict[str, float]]] = {k: [] for k in TRANSPORTS}
            for _ in range(args.rounds):
                for kind in TRANSPORTS:
                    samples[kind].append(
                        asyncio.run(measure(kind, settings, in_flight, args.requests))
                    )
            for kind in TRANSPORTS:
                results[f"{kind}, {in_flight} in flight"] = {
                    metric: round(statistics.median(s[metric] for s in samples[kind]), 2)
                    for metric in ("msg_per_s", "client_cpu_ms_per_request")
                }
    finally:
        sim.stop()
    print(json.dumps(results, indent=2))
    if not args.no_write:
        rows = [
            "| transport, requests in flight | msg/s (median) | client CPU ms/request |",
            "|---|---|---|",
        ]
        rows += [
            f"| {k} | **{v['msg_per_s']}** | {v['client_cpu_ms_per_request']} |"
            for k, v in results.items()
        ]
        write_section(
            "transport",
            "HTTP transport: httpcore pool vs aiohttp pool",
            results,
            "\n".join(rows),
            NOTES,
        )


NOTES = (
    "One process sending Skycore requests to the simulator (a separate process), "
    "both transports alternating in the same run. httpcore 1.0.9's pool does "
    "O(connections x queued requests) work per request (encode/httpcore#1035), "
    "which is why its cost per request grows with the number in flight; the "
    "workers keep 50-100 in flight, so they send through aiohttp's pool."
)


if __name__ == "__main__":
    main()
