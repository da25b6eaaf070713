"""The global rate limiter under real load, counted at the vendor.

Real worker processes send a campaign to the SMSBuddy simulator at its
documented ceiling (1000 SMS a minute) for at least three minutes, while
one-time passwords arrive behind it and a pool of four long codes sends on
Messangi. Reported: the largest count in any 60-second sliding window at the
vendor (must be <= 1000), the sustained rate as a share of the ceiling
(target >= 98%), 429 answers, each long code's busiest second (<= 1), the
one-time-password wait (p50/p99), and Redis commands per message.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import httpx
import redis
from sqlalchemy import select

from bench.report import write_section
from bench.stack import bench_stack
from smsdispatch.local.processes import celery_beat, celery_worker
from smsdispatch.producer.api import Producer
from smsdispatch.producer.validation import SendRequest
from smsdispatch.simulators.common import max_in_window
from smsdispatch.store.db import Database
from smsdispatch.store.models import messages
from smsdispatch.vocabulary import names
from smsdispatch.workers.app import create_app

CEILING = 1000  # SMSBuddy: "Your threshold value is 1000 SMS/minute."
LONG_CODES = [f"1555000000{i}" for i in range(1, 5)]
OVERRIDES = {
    "providers": {
        "messangi": {
            # The short code stays: the catalog's default route sends from it.
            "senders": [
                {"id": "12345", "kind": "short_code"},
                *({"id": n, "kind": "long_code"} for n in LONG_CODES),
            ],
            "pools": {"marketing": LONG_CODES},
        }
    }
}


def redis_calls(client: redis.Redis) -> dict[str, int]:
    return {
        k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in client.info("commandstats").items()
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=3.5, help="campaign length at the ceiling")
    parser.add_argument(
        "--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/smsdispatch_bench"
    )
    parser.add_argument("--otp-every", type=float, default=5.0, help="seconds between OTPs")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    with bench_stack(args.database_url, catalog=OVERRIDES) as stack:
        settings, catalog, env, workdir = stack.settings, stack.catalog, stack.env, stack.workdir
        sim_root = stack.sim_root
        bulk = names.queues(["smsbuddy", "messangi"], urgent=False)
        for n in range(3):
            stack.start(celery_worker(env, workdir, bulk, concurrency=1, name=f"bulk{n}"))
        urgent = [*names.queues(catalog.providers, bulk=False), names.MAINTENANCE_QUEUE]
        stack.start(celery_worker(env, workdir, urgent, concurrency=1, name="urgent"))
        stack.start(celery_beat(env, workdir))
        time.sleep(4)  # the workers boot

        db = Database(args.database_url)
        producer = Producer(settings, catalog, db, create_app(settings))
        client = redis.Redis.from_url(stack.broker_url)
        calls_before = redis_calls(client)
        campaign = int(args.minutes * CEILING * 0.986)
        producer.send_batch(
            [
                SendRequest(f"+91981{i:07d}", f"Festival offer {i}", "smsbuddy")
                for i in range(campaign)
            ]
        )
        producer.send_batch(
            [
                SendRequest(f"+5255{i:08d}", f"Hola {i}", "messangi", sender="pool:marketing")
                for i in range(240)
            ]
        )
        otps: dict[int, float] = {}
        waits: list[float] = []
        total = campaign + 240
        started = time.monotonic()
        next_otp = started + 10
        while True:
            now = time.monotonic()
            if now >= next_otp and now - started < args.minutes * 60 - 10:
                otp = producer.send(
                    SendRequest(
                        f"+9198{len(otps):08d}", "Your code is 482913", "smsbuddy", priority=1
                    )
                )
                otps[otp] = now
                next_otp = now + args.otp_every
            with db.session() as s:
                accepted = (
                    dict(
                        s.execute(
                            select(messages.c.id, messages.c.sent_at).where(
                                messages.c.id.in_(list(otps)), messages.c.status == "accepted"
                            )
                        ).all()
                    )
                    if otps
                    else {}
                )
            for otp_id in [o for o in otps if o in accepted]:
                waits.append(time.monotonic() - otps.pop(otp_id))
            with db.session() as s:
                done = s.execute(select(messages.c.id).where(messages.c.status == "accepted")).all()
            if len(done) >= total + len(waits) + len(otps) and not otps:
                break
            if now - started > args.minutes * 60 * 2 + 120:
                raise TimeoutError(f"only {len(done)} of {total} accepted")
            time.sleep(0.2)
        after = redis_calls(client)
        by_command = {k: n - calls_before.get(k, 0) for k, n in after.items()}
        calls = sum(by_command.values())
        client.close()
        smsbuddy = httpx.get(f"{sim_root}/_sim/smsbuddy/received", timeout=60).json()["received"]
        messangi = httpx.get(f"{sim_root}/_sim/messangi/received", timeout=60).json()["received"]
        smsbuddy_stats = httpx.get(f"{sim_root}/_sim/smsbuddy/stats").json()

    times = sorted(r["at"] for r in smsbuddy)
    span = times[-1] - times[0]
    per_code = {
        code: max_in_window([r["at"] for r in messangi if r["sender"] == code], 1.0)
        for code in LONG_CODES
    }
    figures: dict[str, Any] = {
        "smsbuddy_messages": len(times),
        "run_seconds": round(span, 1),
        "max_in_any_60s_window": max_in_window(times, 60.0),
        "ceiling_per_60s": CEILING,
        "sustained_percent_of_ceiling": round(100 * (len(times) - 1) / span * 60 / CEILING, 2),
        "throttled_429": smsbuddy_stats["throttled"],
        "long_code_max_per_second": per_code,
        "long_code_messages": len(messangi),
        "otp_count": len(waits),
        "otp_wait_p50_s": round(percentile(waits, 0.5), 2) if waits else None,
        "otp_wait_p99_s": round(percentile(waits, 0.99), 2) if waits else None,
        "redis_commands_per_message": round(calls / (total + len(waits)), 2),
        "redis_commands_by_kind": dict(sorted(by_command.items(), key=lambda kv: -kv[1])[:12]),
    }
    print(json.dumps(figures, indent=2))
    if not args.no_write:
        rows = [
            "| figure | measured | target |",
            "|---|---|---|",
            f"| max SMS in any 60 s window at the vendor | **{figures['max_in_any_60s_window']}** "
            "| <= 1000 |",
            f"| sustained rate, % of 1000/min | **{figures['sustained_percent_of_ceiling']}%** "
            f"over {figures['run_seconds']} s | >= 98% |",
            f"| 429 answers | **{figures['throttled_429']}** | 0 |",
            f"| busiest second of any long code | **{max(per_code.values())}** | <= 1 |",
            f"| one-time password wait behind the campaign, p50 / p99 | "
            f"**{figures['otp_wait_p50_s']} s / {figures['otp_wait_p99_s']} s** "
            f"({figures['otp_count']} OTPs) | a few seconds |",
            f"| Redis commands per message (broker + limiter + pauses) | "
            f"**{figures['redis_commands_per_message']}** | |",
        ]
        write_section(
            "ratelimit",
            "Global rate limits under load (SMSBuddy at 1000/min)",
            figures,
            "\n".join(rows),
            NOTES,
        )


NOTES = (
    "Three bulk worker processes and one urgent worker share the limiter in Redis; "
    "the SMSBuddy simulator counts what arrives with its own clock. The limiter's "
    "steady rate is (count + 1 - burst) per window, less a 0.5% margin for network "
    "jitter, so that no sliding window at the vendor can exceed the ceiling."
)


if __name__ == "__main__":
    main()
