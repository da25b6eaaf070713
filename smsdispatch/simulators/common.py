"""What every vendor simulator shares: the record, fault injection, a ceiling,
and delivery reports.

Delivery reports: when a simulator accepts a message it draws the message's
fate (delivered, undelivered or expired, in the proportions of
`Control.report_mix`) and the moment the network settles it
(`report_delay_seconds` later). From then on the vendor's status query (where
it has one) answers that fate, and with `Control.reports` on the simulator
calls the callback the message asked for, in the vendor's form, at that
moment: what the status query says and what the report says always agree.
`state.fates` is the record tests compare with.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import secrets
import time
from abc import ABC, abstractmethod
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import aiohttp
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from yarl import URL

from smsdispatch.config.settings import Settings

# How long an idle pooled report connection is kept: under the 5 s after
# which the API's server (uvicorn) closes it.
REPORT_KEEPALIVE_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class Received:
    """One message the vendor accepted, as the vendor saw it."""

    tracking_id: str
    to: str
    sender: str
    text: str
    reference: str | None  # our reference field (client_reference, externalId, refid) if sent
    at: float  # wall-clock seconds: comparable across processes on this host
    batch: bool = False


class Ceiling(BaseModel):
    """At most `count` accepted messages in any window of `per_seconds`."""

    count: int = Field(gt=0)
    per_seconds: float = Field(gt=0)


log = logging.getLogger(__name__)

FATES = ("delivered", "undelivered", "expired")


class ReportMix(BaseModel):
    """Relative weights of the fates drawn for accepted messages."""

    delivered: float = Field(1.0, ge=0)
    undelivered: float = Field(0.0, ge=0)
    expired: float = Field(0.0, ge=0)

    def draw(self) -> str:
        weights = [self.delivered, self.undelivered, self.expired]
        if sum(weights) <= 0:
            return "delivered"
        return random.choices(FATES, weights)[0]


# What `smsdispatch simulate` reports unless told not to (--no-reports): a
# report for every accepted message a second after it, 90% delivered, 5%
# undelivered, 5% expired (the demo's mix).
STANDALONE_REPORT_MIX = {"delivered": 18, "undelivered": 1, "expired": 1}


@dataclass
class Fate:
    """What the network will do with one accepted message, and when."""

    outcome: str  # delivered | undelivered | expired
    word: str  # the vendor's word for it in reports and status queries
    due: float  # wall-clock seconds at which the network settles it
    callbacks: list[int] = field(default_factory=list)  # HTTP statuses our reports got

    def settled(self, now: float | None = None) -> bool:
        return (now if now is not None else time.time()) >= self.due


@dataclass(frozen=True, slots=True)
class ReportCall:
    """One HTTP request the vendor makes to a callback URL."""

    method: str
    url: str
    params: Mapping[str, str] | None = None
    data: Mapping[str, str] | None = None
    json: Any = None


class Control(BaseModel):
    """Knobs a test or benchmark turns at run time (POST /_sim/<vendor>/control)."""

    latency_seconds: float = 0.0
    # The next `fail_next` send requests, and a random `error_rate` share of
    # all of them, are answered with the vendor's documented answer for
    # `fail_with` (a vendor code: "-1", "500", "E111", "30001", "http:503").
    fail_next: int = 0
    error_rate: float = 0.0
    fail_with: str = "http:500"
    # The next `hang_next` accepted requests are recorded, then answered only
    # after `hang_seconds`: the client times out after the vendor took it.
    hang_next: int = 0
    hang_seconds: float = 5.0
    ceiling: Ceiling | None = None
    # Delivery reports (module docstring): sent only with `reports` on; the
    # fates and the status queries follow `report_mix` and the delay either way.
    reports: bool = False
    report_delay_seconds: float = 1.0
    report_mix: ReportMix = ReportMix()
    # How long a vendor that retries a failed report (Skycore) waits between tries.
    report_retry_seconds: float = 300.0
    # Skycore only: the account's postback URL, set in its web panel, not per request.
    postback_url: str | None = None
    # Restcomm only: print the numbers of stored messages (to, from) without
    # their '+', as the document's examples do; filters still match the number
    # as it was sent.
    numbers_without_plus: bool = False


@dataclass
class Stats:
    received: int
    unique_references: int
    duplicate_references: int
    duplicate_recipient_texts: int
    max_in_window: int
    window_seconds: float
    max_per_second_by_sender: dict[str, int]


@dataclass
class SimState:
    control: Control = field(default_factory=Control)
    received: list[Received] = field(default_factory=list)
    fates: dict[str, Fate] = field(default_factory=dict)  # tracking id -> fate
    requests: int = 0
    throttled: int = 0
    _window: deque[float] = field(default_factory=deque)


class VendorSimulator(ABC):
    """Base for one vendor's simulator.

    A vendor handler calls `begin()` first (latency, injected faults), checks
    auth and the request as the vendor's document says, calls `admit(n)`
    before accepting n messages (the ceiling), `accept(...)` for each, and
    returns through `finish()` (injected hangs).
    """

    name: ClassVar[str]
    _ids = itertools.count(1)
    # The vendor's report word for each fate (delivered, undelivered, expired).
    FINAL_WORDS: ClassVar[Mapping[str, str]]
    # Further tries of a report its callback did not answer with a 2xx.
    report_retries: ClassVar[int] = 0

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Knobs laid over `default_control()` that a reset keeps: what the
        # standalone simulators start with (reports on, `STANDALONE_REPORTS`).
        self.standing: dict[str, Any] = {}
        self.state = SimState(control=self.default_control())
        self._report_client: aiohttp.ClientSession | None = None
        self._report_tasks: set[asyncio.Task[None]] = set()
        # Reports over pooled connections, as a vendor posting thousands a
        # second would: off in a test's own process, whose server loop may
        # stop at any time and leave an idle pooled connection unclosed.
        self.report_keepalive = False

    def default_control(self) -> Control:
        """The knobs after a reset: the vendor's documented limits, no faults."""
        return Control()

    # -- vendor-specific -------------------------------------------------

    @abstractmethod
    def routes(self) -> list[BaseRoute]:
        """The vendor's documented endpoints, relative to its mount point."""

    @abstractmethod
    def fault_response(self, code: str) -> Response:
        """The vendor's documented answer carrying `code`."""

    @abstractmethod
    def throttle_response(self) -> Response:
        """The vendor's answer when the ceiling is reached."""

    def report_calls(self, received: Received, fate: Fate) -> list[ReportCall]:
        """The requests the vendor makes when `received` meets its fate (in
        order); none when the message asked for no report."""
        return []

    def on_settled(self, received: Received, fate: Fate) -> None:  # noqa: B027 (optional hook)
        """The network settled the message: a vendor with a stored record updates it."""

    # -- shared ------------------------------------------------------------

    def new_tracking_id(self) -> str:
        return f"{self.name[:3].upper()}{next(self._ids):010d}{secrets.token_hex(4)}"

    async def begin(self) -> Response | None:
        control = self.state.control
        self.state.requests += 1
        if control.latency_seconds > 0:
            await asyncio.sleep(control.latency_seconds)
        if control.fail_next > 0:
            control.fail_next -= 1
            return self.fault_response(control.fail_with)
        if control.error_rate > 0 and random.random() < control.error_rate:
            return self.fault_response(control.fail_with)
        return None

    def admit(self, count: int) -> Response | None:
        """Refuse `count` more messages if they would break the ceiling."""
        ceiling = self.state.control.ceiling
        if ceiling is None:
            return None
        now = time.time()
        window = self.state._window
        while window and window[0] <= now - ceiling.per_seconds:
            window.popleft()
        if len(window) + count > ceiling.count:
            self.state.throttled += 1
            return self.throttle_response()
        window.extend([now] * count)
        return None

    def accept(
        self, *, to: str, sender: str, text: str, reference: str | None, batch: bool = False
    ) -> Received:
        received = Received(
            self.new_tracking_id(), to, sender, text, reference or None, time.time(), batch
        )
        state = self.state
        state.received.append(received)
        outcome = state.control.report_mix.draw()
        state.fates[received.tracking_id] = Fate(
            outcome,
            self.FINAL_WORDS[outcome],
            received.at + state.control.report_delay_seconds,
        )
        if state.control.reports:
            # Scheduled now, run after the handler has stored what the report
            # needs (its URL): the task first sleeps until the fate is due.
            task = asyncio.get_running_loop().create_task(self._report_when_due(state, received))
            self._report_tasks.add(task)
            task.add_done_callback(self._report_tasks.discard)
        return received

    def fate(self, tracking_id: str) -> Fate | None:
        """The message's fate once the network settled it; None before (or unknown)."""
        fate = self.state.fates.get(tracking_id)
        return fate if fate is not None and fate.settled() else None

    async def _report_when_due(self, state: SimState, received: Received) -> None:
        fate = state.fates[received.tracking_id]
        await asyncio.sleep(max(0.0, fate.due - time.time()))
        for attempt in range(1 + self.report_retries):
            if self.state is not state:  # reset meanwhile: this message is forgotten
                return
            if attempt == 0:
                self.on_settled(received, fate)
            answered = [await self._call(call) for call in self.report_calls(received, fate)]
            fate.callbacks += answered
            if all(200 <= status < 300 for status in answered):
                return
            await asyncio.sleep(state.control.report_retry_seconds)

    async def _call(self, call: ReportCall) -> int:
        # aiohttp, not httpx: at a few hundred reports a second httpx's client
        # costs the simulator's one loop so much CPU that requests waiting to
        # be read get their arrival stamps together, and the vendor's clock
        # would count a ceiling broken that our sender kept.
        if self._report_client is None:
            self._report_client = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=10.0),
                # Idle connections expire before uvicorn's 5 s keep-alive closes
                # them on its side (the race of aiohttp#2682: a report written
                # on a closing connection fails).
                connector=aiohttp.TCPConnector(
                    limit=100,
                    force_close=not self.report_keepalive,
                    keepalive_timeout=REPORT_KEEPALIVE_SECONDS if self.report_keepalive else None,
                ),
            )
        try:
            async with self._report_client.request(
                call.method,
                URL(call.url, encoded=True),
                params=call.params,
                data=call.data,
                json=call.json,
            ) as response:
                await response.read()
                return response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("%s: a delivery report failed: %s", self.name, type(exc).__name__)
            return 0

    async def close(self) -> None:
        """Stop the reports still due and close their pooled connections (the
        server is stopping)."""
        for task in list(self._report_tasks):
            task.cancel()
        if self._report_client is not None:
            await self._report_client.close()
            self._report_client = None

    async def finish(self, response: Response, *, accepted: bool = True) -> Response:
        control = self.state.control
        if accepted and control.hang_next > 0:
            control.hang_next -= 1
            await asyncio.sleep(control.hang_seconds)
        return response

    def reset(self) -> None:
        self.state = SimState(control=self.standing_control())

    def stand(self, **knobs: Any) -> None:
        """Set knobs now and after every reset (`POST /_sim/<vendor>/control`
        still turns them for the moment)."""
        self.standing.update(knobs)
        self.state.control = Control.model_validate({**self.state.control.model_dump(), **knobs})

    def standing_control(self) -> Control:
        return Control.model_validate({**self.default_control().model_dump(), **self.standing})

    def stats(self, window_seconds: float = 60.0) -> Stats:
        received = self.state.received
        refs = Counter(r.reference for r in received if r.reference)
        pairs = Counter((r.to, r.text) for r in received)
        per_sender: dict[str, Counter[int]] = {}
        for r in received:
            per_sender.setdefault(r.sender, Counter())[int(r.at)] += 1
        return Stats(
            received=len(received),
            unique_references=len(refs),
            duplicate_references=sum(n - 1 for n in refs.values() if n > 1),
            duplicate_recipient_texts=sum(n - 1 for n in pairs.values() if n > 1),
            max_in_window=max_in_window([r.at for r in received], window_seconds),
            window_seconds=window_seconds,
            max_per_second_by_sender={s: max(c.values()) for s, c in per_sender.items()},
        )

    def control_routes(self) -> list[BaseRoute]:
        """Inspection and control, mounted at /_sim/<vendor>/."""

        async def get_received(request: Request) -> Response:
            since = int(request.query_params.get("since", "0"))
            rows = [asdict(r) for r in self.state.received[since:]]
            return JSONResponse({"received": rows, "next": since + len(rows)})

        async def get_stats(request: Request) -> Response:
            window = float(request.query_params.get("window", "60"))
            body: dict[str, Any] = asdict(self.stats(window))
            body.update(requests=self.state.requests, throttled=self.state.throttled)
            return JSONResponse(body)

        async def post_control(request: Request) -> Response:
            update = await request.json()
            # Validated whole: model_copy(update=...) would leave nested
            # knobs (ceiling, report_mix) as plain dicts.
            self.state.control = Control.model_validate(
                {**self.state.control.model_dump(), **update}
            )
            return JSONResponse(self.state.control.model_dump())

        async def post_reset(request: Request) -> Response:
            self.reset()
            return JSONResponse({"reset": self.name})

        return [
            Route("/received", get_received, methods=["GET"]),
            Route("/stats", get_stats, methods=["GET"]),
            Route("/control", post_control, methods=["POST"]),
            Route("/reset", post_reset, methods=["POST"]),
        ]


def max_in_window(times: list[float], window_seconds: float) -> int:
    """The largest number of events inside any sliding window of that length."""
    ordered = sorted(times)
    best = start = 0
    for end, t in enumerate(ordered):
        while ordered[start] <= t - window_seconds:
            start += 1
        best = max(best, end - start + 1)
    return best
