"""The real pipeline under a schedule of faults, counted at the vendors afterwards.

One `Harness` owns what outlives a run: a private redis-server, a database
reached through a TCP proxy (chaos.proxy) so it can be made unreachable for
this stack alone, and the five vendor simulators (in this process, so faults
turn their knobs directly and the tally reads what they received). Each run
starts its own beat and N real Celery worker processes, configured by
environment variables as an operator configures them, submits the load
through the producer, fires the faults at their moments, waits until every
message is final (or the time runs out), and tallies (chaos.tally).

The producer, the workers and beat reach PostgreSQL through the proxy; the
harness itself watches the database directly, so it keeps counting while
the others cannot.

A baseline is the same load without faults: "later than it would be without
the fault" is judged against it.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from celery import Celery
from kombu.exceptions import OperationalError
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from chaos.faults import Fault
from chaos.proxy import ProxyState, TcpProxy
from chaos.tally import Row, VendorTally, digits, tally_vendor, violations
from smsdispatch.config.catalog import Catalog, load_catalog
from smsdispatch.config.settings import Settings
from smsdispatch.local.catalogs import write_catalog
from smsdispatch.local.environment import demo_credentials, settings_from_env, stack_env
from smsdispatch.local.processes import (
    WORKER_CONCURRENCY,
    ManagedProcess,
    PrivateRedis,
    celery_beat,
    celery_worker,
    wait_until,
)
from smsdispatch.local.simulators import SimulatorServer
from smsdispatch.producer.api import Producer
from smsdispatch.producer.validation import SendRequest
from smsdispatch.simulators.common import VendorSimulator
from smsdispatch.store.db import Database
from smsdispatch.store.migrate import upgrade
from smsdispatch.store.models import messages
from smsdispatch.vocabulary import keys, names
from smsdispatch.vocabulary.status import SETTLED, MessageStatus
from smsdispatch.workers.app import create_app

VENDORS = ("cue", "messangi", "smsbuddy", "restcomm", "skycore")
TABLES = "messages, send_attempts, campaigns, opt_outs, delivery_reports"
POLL_SECONDS = 0.2
RESUBMIT_SECONDS = 0.5


@dataclass(frozen=True)
class Timings:
    """The deadlines the stack runs with: short, so recoveries show in seconds.

    `margin` is what the design itself needs to notice a lost task or worker
    (a row left in `sending` waits `sending_deadline`, one left in `queued`
    `requeue_after`) plus slack for a busy machine: a run is late ("stalled")
    when its time to final exceeds the baseline by more than the faults'
    durations and this margin.
    """

    sweep_interval: float = 0.5
    requeue_after: float = 5.0
    sending_deadline: float = 12.0
    http_total_timeout: float = 10.0
    http_read_timeout: float = 5.0
    http_connect_timeout: float = 2.0
    # How often beat asks the vendors about `unknown` messages: the way an
    # ambiguous send is settled, or found absent and sent after all; and how
    # long after giving up on a send it is looked for in the vendor's list.
    reconcile_interval: float = 2.0
    lost_send_search_after: float = 2.0
    slack: float = 5.0

    @property
    def margin(self) -> float:
        asking = self.reconcile_interval + self.lost_send_search_after
        return self.sending_deadline + self.requeue_after + asking + self.slack

    def env(self) -> dict[str, str]:
        return {
            "SWEEP_INTERVAL_SECONDS": f"{self.sweep_interval:g}",
            "REQUEUE_AFTER_SECONDS": f"{self.requeue_after:g}",
            "SENDING_DEADLINE_SECONDS": f"{self.sending_deadline:g}",
            "HTTP_TOTAL_TIMEOUT_SECONDS": f"{self.http_total_timeout:g}",
            "HTTP_READ_TIMEOUT_SECONDS": f"{self.http_read_timeout:g}",
            "HTTP_CONNECT_TIMEOUT_SECONDS": f"{self.http_connect_timeout:g}",
            "RECONCILE_INTERVAL_SECONDS": f"{self.reconcile_interval:g}",
            "LOST_SEND_SEARCH_AFTER_SECONDS": f"{self.lost_send_search_after:g}",
        }


# The shipped catalog (its limits included), with a back-off that reaches
# its cap in seconds and enough attempts to outlast a vendor down for a
# minute: the faults' effects then show at the scale of the faults.
RETRY = {"max_attempts": 20, "backoff_base_seconds": 0.5, "backoff_cap_seconds": 5.0}


@dataclass(frozen=True)
class Load:
    """What a run submits: `per_vendor` messages to each vendor, each to its own number,
    in waves every `wave_seconds` over `submit_seconds` (0: all at once).

    Waves of a task's size (100 for the single-message vendors) keep every
    vendor busy with whole tasks: a worker persists a task's outcomes once,
    after its last vendor call, so while it sends it holds answers the
    database has not seen. That window is where a fault does harm.
    """

    per_vendor: int = 60
    vendors: tuple[str, ...] = VENDORS
    workers: int = 2
    concurrency: int = WORKER_CONCURRENCY
    submit_seconds: float = 0.0
    wave_seconds: float = 1.0
    # Vendor latency keeps requests in flight when a fault strikes.
    latency_seconds: float = 0.2

    def requests(self) -> list[SendRequest]:
        """Interleaved across vendors, as mixed traffic arrives.

        Each message has its own recipient (how the tally matches it) and,
        except at Messangi, its own text. Messangi's batch endpoint carries one
        text to many recipients, so its texts are shared by groups of 100, as
        a bulk send's are, and its batch endpoint is exercised too. The
        idempotency key lets the harness submit a batch again when the
        database went away during the call, as a careful client would.
        """
        out = []
        for i in range(self.per_vendor):
            for v, vendor in enumerate(self.vendors):
                n = i * len(self.vendors) + v
                body = f"chaos batch {i // 100}" if vendor == "messangi" else f"chaos message {n}"
                out.append(SendRequest(recipient(n), body, vendor, idempotency_key=f"chaos-{n}"))
        return out

    def waves(self) -> list[tuple[float, list[SendRequest]]]:
        """(seconds after the start, batch): one batch every `wave_seconds`."""
        requests = self.requests()
        count = max(1, math.ceil(self.submit_seconds / self.wave_seconds))
        size = math.ceil(len(requests) / count)
        return [
            (i * self.wave_seconds, requests[i * size : (i + 1) * size])
            for i in range(count)
            if requests[i * size : (i + 1) * size]
        ]


def recipient(n: int) -> str:
    """The n-th number of a run: valid +1 202 numbers, distinct for n < 8,000,000."""
    return f"+1202{2_000_000 + n}"


@dataclass(frozen=True)
class Scheduled:
    """A fault fired `at_seconds` after the first submission, and not before
    `at_share` of all messages are settled in the database, nor before
    `at_received` of them reached the vendors (when given).

    `at_received` aims at the window a worker is most exposed in: vendors have
    taken messages whose outcomes the workers still hold, unrecorded.
    """

    fault: Fault
    at_seconds: float = 0.0
    at_share: float | None = None
    at_received: float | None = None

    def due(self, elapsed: float, settled: float, received: float) -> bool:
        return (
            elapsed >= self.at_seconds
            and (self.at_share is None or settled >= self.at_share)
            and (self.at_received is None or received >= self.at_received)
        )

    def describe(self) -> str:
        moments = []
        if self.at_share is not None:
            moments.append(f"{self.at_share:.0%} settled")
        if self.at_received is not None:
            moments.append(f"{self.at_received:.0%} at the vendors")
        when = f"at {', '.join(moments)}" if moments else ""
        if not when and not self.at_seconds:
            return f"{self.fault} from the start"
        if self.at_seconds:
            when = f"{when}, " if when else ""
            when += f"at {self.at_seconds:g} s"
        return f"{self.fault} {when}"


@dataclass
class FaultEvent:
    fault: str
    injected_at: float
    healed_at: float | None = None
    in_flight: dict[str, int] = field(default_factory=dict)  # rows in `sending` then
    killed_in_flight: bool = False  # they were a dead worker's (chaos.faults.Fault)


@dataclass(frozen=True)
class Drive:
    """What one run's driving loop saw."""

    final_at: dict[str, float]  # vendor -> seconds from the first submission
    events: list[FaultEvent]
    resubmitted: int
    exits: list[str]


@dataclass
class RunResult:
    name: str
    load: Load
    schedule: list[str]
    tallies: dict[str, VendorTally]
    events: list[FaultEvent]
    allowance_seconds: float
    baseline_seconds: dict[str, float | None]
    log_dir: Path
    resubmitted: int = 0  # producer calls the database refused, made again
    exits: list[str] = field(default_factory=list)  # processes that crashed, restarted

    def violations(self) -> list[str]:
        found = []
        for vendor, t in self.tallies.items():
            found += violations(
                t,
                baseline_seconds=self.baseline_seconds.get(vendor),
                allowance_seconds=self.allowance_seconds,
            )
        return found

    def table(self) -> str:
        """One line per vendor: the figures a reader compares with the baseline."""
        head = (
            f"{'vendor':<9} {'submitted':>9} {'received':>8} {'lost':>5} {'dup':>4} "
            f"{'inflight':>8} {'unknown':>7} {'failed':>6} {'unsettled':>9} {'untracked':>9} "
            f"{'throttled':>9} {'final s':>8} {'baseline':>8}"
        )
        lines = [f"{self.name}: {'; '.join(self.schedule) or 'no faults'}", head]
        if self.resubmitted:
            lines[0] += f" (the producer's database calls failed {self.resubmitted}x, retried)"
        for vendor, t in self.tallies.items():
            base = self.baseline_seconds.get(vendor)
            lines.append(
                f"{vendor:<9} {t.submitted:>9} {t.received:>8} {t.lost:>5} {t.duplicated:>4} "
                f"{t.in_flight:>8} {t.unknown:>7} {t.failed:>6} {t.unsettled:>9} "
                f"{t.untracked:>9} {t.throttled:>9} {_seconds(t.seconds_to_final):>8} "
                f"{_seconds(base):>8}"
            )
        for event in self.events:
            healed = f", healed {event.healed_at:.1f} s" if event.healed_at is not None else ""
            lines.append(
                f"  {event.fault}: injected {event.injected_at:.1f} s{healed}; "
                f"rows in sending then {dict(event.in_flight)}"
            )
        lines += [f"  {crash}" for crash in self.exits]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "schedule": self.schedule,
            "load": {
                "per_vendor": self.load.per_vendor,
                "workers": self.load.workers,
                "concurrency": self.load.concurrency,
                "latency_seconds": self.load.latency_seconds,
            },
            "allowance_seconds": self.allowance_seconds,
            "resubmitted": self.resubmitted,
            "exits": self.exits,
            "events": [e.__dict__ for e in self.events],
            "vendors": {
                v: {**t.as_dict(), "baseline_seconds": self.baseline_seconds.get(v)}
                for v, t in self.tallies.items()
            },
            "violations": self.violations(),
        }


def _exit(process: ManagedProcess, elapsed: float) -> str:
    code = process.proc.returncode if process.proc is not None else None
    return f"{process.name} exited by itself (status {code}) at {elapsed:.1f} s; restarted"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


class RunningStack:
    """One run's processes; what a fault touches (chaos.faults.Target)."""

    def __init__(self, harness: Harness, env: dict[str, str], log_dir: Path, faults: list[Fault]):
        self.harness = harness
        self.env = env
        self.log_dir = log_dir
        self.faults = faults
        self.catalog = harness.catalog
        self.workers: list[ManagedProcess] = []
        self.retired: list[ManagedProcess] = []
        self.beat: ManagedProcess | None = None
        self.exits: list[str] = []  # processes that died by themselves, restarted
        self._generation: Counter[int] = Counter()
        self._concurrency = 1

    def start(self, load: Load, celery: Celery) -> None:
        """Beat and the workers; back once every worker answers a ping."""
        self._concurrency = load.concurrency
        self.beat = celery_beat(self.env, self.log_dir).start()
        for index in range(load.workers):
            self.workers.append(self._worker(index, load.concurrency).start())
        expected = {w.name for w in self.workers}

        def ready() -> bool:
            try:
                replies = celery.control.ping(timeout=0.5)
            except (OSError, redis.RedisError, OperationalError):
                return False  # the harness's own broker connection: try again
            return expected <= {node.split("@")[0] for reply in replies for node in reply}

        try:
            wait_until(ready, 60, "the workers to answer a ping", interval=0.2)
        except TimeoutError:
            raise RuntimeError(f"workers did not start:\n{self.logs()}") from None

    def _worker(self, index: int, concurrency: int) -> ManagedProcess:
        env = dict(self.env)
        for fault in self.faults:
            env.update(fault.worker_env(index))
        generation = self._generation[index]
        self._generation[index] += 1
        name = f"w{index}" if generation == 0 else f"w{index}r{generation}"
        queues = [*names.queues(self.catalog.providers), names.DEFAULT_QUEUE]
        queues.append(names.MAINTENANCE_QUEUE)
        return celery_worker(
            env, self.log_dir, queues, concurrency=concurrency, name=name, loglevel="INFO"
        )

    def supervise(self, elapsed: float) -> None:
        """Restart any worker or beat that exited by itself, as the operator's
        supervisor would (docker compose's `restart: unless-stopped`), and
        note it: a crash is a finding even when nothing is lost."""
        for index, worker in enumerate(self.workers):
            if not worker.alive():
                self.exits.append(_exit(worker, elapsed))
                self.replace_worker(index)
        if self.beat is not None and not self.beat.alive():
            self.exits.append(_exit(self.beat, elapsed))
            self.retired.append(self.beat)
            self.beat = celery_beat(self.env, self.log_dir).start()

    # -- chaos.faults.Target -------------------------------------------------

    def kill_worker(self, index: int, sig: int) -> None:
        worker = self.workers[index]
        worker.kill(sig)
        wait_until(lambda: not worker.alive(), 10, f"worker {worker.name} to die")

    def replace_worker(self, index: int) -> None:
        self.retired.append(self.workers[index])
        self.workers[index] = self._worker(index, self._concurrency).start()

    def flush_redis(self) -> None:
        client = redis.Redis.from_url(self.harness.redis.url)
        try:
            client.flushall()
        finally:
            client.close()

    def stop_redis(self) -> None:
        self.harness.stop_redis()

    def start_redis(self) -> None:
        self.harness.start_redis()

    def database_down(self, mode: ProxyState) -> None:
        if mode is ProxyState.HANG:
            self.harness.proxy.hang()
        else:
            self.harness.proxy.cut()

    def database_up(self) -> None:
        self.harness.proxy.restore()

    def simulator(self, vendor: str) -> VendorSimulator:
        return self.harness.simulators[vendor]

    # -------------------------------------------------------------------------

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM to every process at once, SIGKILL to any still running after `timeout`."""
        processes = [p for p in (self.beat, *self.workers, *self.retired) if p is not None]
        for process in processes:
            process.kill(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                if process.proc is not None:
                    process.proc.wait(max(0.1, deadline - time.monotonic()))
            process.kill(signal.SIGKILL)
            if process.proc is not None:
                process.proc.wait(10)

    def logs(self, lines: int = 30) -> str:
        every = [self.beat, *self.retired, *self.workers]
        return "\n".join(f"--- {p.name}\n{p.log_tail(lines)}" for p in every if p is not None)


class Submitter(threading.Thread):
    """The run's producer, on a thread of its own: it reaches PostgreSQL through
    the proxy like the workers, so a database that hangs blocks it as it would
    block an application, while the harness goes on timing and healing."""

    def __init__(
        self, harness: Harness, celery: Celery, waves: list[tuple[float, list[SendRequest]]]
    ) -> None:
        super().__init__(daemon=True, name="submitter")
        self.db = Database(harness.proxied_url)
        self.producer = Producer(harness.settings, harness.catalog, self.db, celery)
        self.waves = waves
        self.started_at = time.monotonic()
        self.finished = threading.Event()
        self.stopping = threading.Event()
        self.failures = 0  # batches the database refused and that were submitted again
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for at, batch in self.waves:
                wait = self.started_at + at - time.monotonic()
                if wait > 0 and self.stopping.wait(wait):
                    return
                while not self._submit(batch):
                    if self.stopping.wait(RESUBMIT_SECONDS):
                        return
            self.finished.set()
        except BaseException as exc:
            self.error = exc
        finally:
            self.db.dispose()

    def _submit(self, batch: list[SendRequest]) -> bool:
        """Store and enqueue `batch`; False if the database could not be reached
        (the batch goes again: its idempotency keys make that safe)."""
        try:
            result = self.producer.send_batch(batch)
        except DBAPIError:
            self.failures += 1
            return False
        if result.rejected:
            raise ValueError(f"the load itself was rejected: {result.rejected[:3]}")
        return True

    def check(self) -> None:
        if self.error is not None:
            raise RuntimeError("the submitter failed") from self.error

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=30)


class Harness:
    """Redis, the proxied database and the simulators, shared by a series of runs."""

    def __init__(
        self,
        database_url: str,
        *,
        workdir: Path | None = None,
        timings: Timings | None = None,
        grace_seconds: float = 1.5,
    ) -> None:
        self.database_url = database_url
        self.timings = timings or Timings()
        self.grace_seconds = grace_seconds
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="smsdispatch-chaos-"))
        self._baselines: dict[Load, RunResult] = {}
        self._runs = 0

    # -- set-up ----------------------------------------------------------------

    def start(self) -> Harness:
        url = make_url(self.database_url)
        if url.get_backend_name() != "postgresql":
            raise ValueError("the chaos harness runs on PostgreSQL (it cuts its connections)")
        ensure_database(self.database_url)
        upgrade(self.database_url)
        self.proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432).start()
        self.proxied_url = url.set(host=self.proxy.host, port=self.proxy.port).render_as_string(
            hide_password=False
        )
        self.redis = PrivateRedis(self.workdir).start()
        self.catalog_path = write_catalog(
            self.workdir / "providers.toml",
            {"providers": {name: {"retry": RETRY} for name in VENDORS}},
        )
        self.catalog: Catalog = load_catalog(self.catalog_path)
        credentials = demo_credentials()
        sim_settings = Settings(
            _env_file=None, **settings_from_env({**credentials, "REDIS_URL": self.redis.url})
        )
        self.simulators = SimulatorServer(sim_settings).start()
        self.env = stack_env(
            redis_url=self.redis.url,
            database_url=self.proxied_url,
            simulators_root=self.simulators.root,
            credentials=credentials,
            extra={**self.timings.env(), "CATALOG_PATH": str(self.catalog_path)},
        )
        self.settings = Settings(_env_file=None, **settings_from_env(self.env))
        self.observer = Database(self.database_url)
        return self

    def stop(self) -> None:
        with contextlib.suppress(AttributeError):
            self.observer.dispose()
        for part in ("simulators", "redis", "proxy"):
            with contextlib.suppress(AttributeError):
                getattr(self, part).stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Harness:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop_redis(self) -> None:
        self.redis.kill(signal.SIGKILL)
        assert self.redis.proc is not None
        self.redis.proc.wait(10)

    def start_redis(self) -> None:
        if not self.redis.alive():
            self.redis = PrivateRedis(self.workdir, port=self.redis.port).start()

    # -- runs ------------------------------------------------------------------

    def baseline(self, load: Load, timeout: float = 600.0) -> RunResult:
        """The load without faults (run once per load and remembered)."""
        if load not in self._baselines:
            self._baselines[load] = self.run("baseline", load, (), timeout=timeout)
        return self._baselines[load]

    def run(
        self,
        name: str,
        load: Load,
        schedule: Sequence[Scheduled],
        *,
        baseline: RunResult | None = None,
        timeout: float | None = None,
    ) -> RunResult:
        """Run `load` under `schedule` until every message is final or `timeout`.

        With a baseline the default timeout is the stall limit plus a little:
        a run that stalls ends as soon as it is known to be late.
        """
        allowance = sum(s.fault.duration for s in schedule) + self.timings.margin
        baseline_seconds: dict[str, float | None] = (
            {v: t.seconds_to_final for v, t in baseline.tallies.items()} if baseline else {}
        )
        if timeout is None:
            known = [s for s in baseline_seconds.values() if s is not None]
            timeout = (max(known) + allowance + 5.0) if known else 600.0
        self._runs += 1
        log_dir = self.workdir / f"run-{self._runs:02d}-{_slug(name)}"
        log_dir.mkdir(parents=True, exist_ok=True)
        self._reset(load)
        faults = [s.fault for s in schedule]
        stack = RunningStack(self, self.env, log_dir, faults)
        celery = create_app(self.settings)
        try:
            stack.start(load, celery)
            drive = self._drive(stack, load, schedule, celery, timeout)
        except BaseException as exc:
            exc.add_note(stack.logs())
            raise
        finally:
            self.proxy.restore()
            self.start_redis()
            stack.stop()
            celery.close()
        in_flight = merged_in_flight(drive.events)
        rows = self._rows()
        tallies = {
            vendor: tally_vendor(
                vendor,
                rows,
                self.simulators[vendor].state.received,
                throttled=self.simulators[vendor].state.throttled,
                in_flight=in_flight[vendor],
                seconds_to_final=drive.final_at.get(vendor),
            )
            for vendor in load.vendors
        }
        result = RunResult(
            name,
            load,
            [s.describe() for s in schedule],
            tallies,
            drive.events,
            allowance,
            baseline_seconds,
            log_dir,
            drive.resubmitted,
            drive.exits,
        )
        (log_dir / "result.json").write_text(json.dumps(result.as_dict(), indent=2, default=str))
        return result

    def _drive(
        self,
        stack: RunningStack,
        load: Load,
        schedule: Sequence[Scheduled],
        celery: Celery,
        timeout: float,
    ) -> Drive:
        """Submit, fire and heal the faults, and time each vendor until all is final."""
        pending = list(schedule)
        active: list[tuple[Fault, FaultEvent, float]] = []
        events: list[FaultEvent] = []
        final_at: dict[str, float] = {}
        waves = load.waves()
        # The schedule names every message's vendor (no routing here).
        planned = Counter(r.provider for _, batch in waves for r in batch if r.provider)
        total = sum(planned.values())
        submitter = Submitter(self, celery, waves)
        started = submitter.started_at
        submitter.start()
        try:
            while True:
                elapsed = time.monotonic() - started
                submitter.check()
                stack.supervise(elapsed)
                submitted = submitter.finished.is_set()
                settled = self._settled()
                for vendor, count in planned.items():
                    if (
                        vendor not in final_at
                        and submitted
                        and settled.get(vendor, 0) >= count
                        and not self._unsent_unknown(vendor)
                    ):
                        final_at[vendor] = elapsed
                share = sum(settled.values()) / total
                received = self._received(load) / total
                for item in [s for s in pending if s.due(elapsed, share, received)]:
                    pending.remove(item)
                    item.fault.inject(stack)
                    event = FaultEvent(
                        str(item.fault),
                        time.monotonic() - started,
                        in_flight=self._sending(),
                        killed_in_flight=item.fault.kills_in_flight,
                    )
                    events.append(event)
                    active.append((item.fault, event, event.injected_at + item.fault.duration))
                for fault, event, heal_at in list(active):
                    if elapsed >= heal_at:
                        fault.heal(stack)
                        event.healed_at = time.monotonic() - started
                        active.remove((fault, event, heal_at))
                done = len(final_at) == len(planned) and not pending and not active
                if done or elapsed > timeout:
                    break
                time.sleep(POLL_SECONDS)
        finally:
            for fault, event, _ in active:
                fault.heal(stack)
                event.healed_at = time.monotonic() - started
            submitter.stop()
        # A resend still on its way when the last row settled shows up here.
        time.sleep(self.grace_seconds)
        return Drive(final_at, events, submitter.failures, stack.exits)

    def _reset(self, load: Load) -> None:
        """Empty tables, Redis and simulators; the vendors' latency for this load."""
        engine = create_engine(self.database_url)
        try:
            with engine.begin() as conn:
                conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
        finally:
            engine.dispose()
        client = redis.Redis.from_url(self.redis.url)
        try:
            client.flushall()
            # Nothing is booked in an empty Redis of our own: the limiter's
            # guard for a Redis that lost its bookings need not wait.
            client.set(keys.LIMITER_STATE, 0)
        finally:
            client.close()
        self.simulators.reset()
        for vendor in load.vendors:
            self.simulators[vendor].state.control.latency_seconds = load.latency_seconds

    def _count_by_provider(self, statuses: frozenset[str]) -> dict[str, int]:
        m = messages.c
        with self.observer.session() as session:
            result = session.execute(
                select(m.provider, func.count()).where(m.status.in_(statuses)).group_by(m.provider)
            )
            return {provider: int(n) for provider, n in result}

    def _settled(self) -> dict[str, int]:
        return self._count_by_provider(frozenset(s.value for s in SETTLED))

    def _unsent_unknown(self, vendor: str) -> int:
        """Rows `unknown` whose message the vendor never took: not final yet,
        since reconciliation may find them absent and have them sent."""
        m = messages.c
        with self.observer.session() as session:
            numbers = session.scalars(
                select(m.recipient).where(
                    m.provider == vendor, m.status == MessageStatus.UNKNOWN.value
                )
            ).all()
        if not numbers:
            return 0
        took = {digits(r.to) for r in self.simulators[vendor].state.received}
        return sum(1 for number in numbers if digits(number) not in took)

    def _received(self, load: Load) -> int:
        return sum(len(self.simulators[vendor].state.received) for vendor in load.vendors)

    def _sending(self) -> dict[str, int]:
        return self._count_by_provider(frozenset({MessageStatus.SENDING.value}))

    def _rows(self) -> list[Row]:
        m = messages.c
        with self.observer.session() as session:
            result = session.execute(
                select(m.id, m.provider, m.recipient, m.status, m.tracking_id, m.error_code)
            )
            return [Row(*r) for r in result]


def ensure_database(url: str) -> None:
    """Create the run's own database on the server if it is not there yet."""
    parsed = make_url(url)
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": parsed.database}
            ).scalar()
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    finally:
        admin.dispose()


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")[:40]


def merged_in_flight(events: Sequence[FaultEvent]) -> Counter[str]:
    """Rows in `sending` when a worker was killed, added up per vendor: an
    upper bound of the dead workers' rows (live workers' are counted too)."""
    total: Counter[str] = Counter()
    for event in events:
        if event.killed_in_flight:
            total.update(event.in_flight)
    return total
