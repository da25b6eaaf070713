"""The shared send flow every vendor adapter runs.

A vendor module fills in three steps, as django-anymail's backends do: build
the request, send it (here), parse the answer into `Outcome`s. Everything that
is the same for every vendor lives here: the split between transport errors
that are safe to resend and those that are ambiguous, the generic meaning of
HTTP statuses when a vendor answers outside its documented body, batching, and
catalog overrides of a code's class.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import httpx

from smsdispatch.config.catalog import ProviderEntry
from smsdispatch.config.settings import VendorSettings
from smsdispatch.providers.errors import ConfigurationError, VendorProtocolError
from smsdispatch.providers.transport import SlotMissed
from smsdispatch.vocabulary.delivery import DeliveryReport, IncomingReport, MalformedReport
from smsdispatch.vocabulary.message import OutboundMessage
from smsdispatch.vocabulary.outcomes import CodeTable, Outcome, OutcomeKind, clip_raw

SettingsT = TypeVar("SettingsT", bound=VendorSettings)
log = logging.getLogger(__name__)

# httpx raises these when the request never reached the vendor: resending is safe.
NOT_SENT_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)


# Hears one request's messages and their outcomes as soon as they are known.
AnswerHook = Callable[[Sequence[OutboundMessage], Sequence[Outcome]], None]


class Gate(Protocol):
    """What decides, just before a request leaves, whether it may leave now.

    `admit` waits (briefly) for the vendor's and the sender's rate limits and
    returns the messages to send, their sender resolved if it named a pool;
    or it returns an `Outcome` (DEFERRED) saying why they must wait longer.
    """

    async def admit(
        self, group: Sequence[OutboundMessage]
    ) -> Sequence[OutboundMessage] | Outcome: ...


class Adapter(ABC, Generic[SettingsT]):
    """One vendor's API behind the normalized vocabulary.

    Subclasses set `name` and `codes`, and implement `build_request` and
    `parse_response`; vendors with a batch endpoint also set
    `supports_batch` and implement the batch pair.
    """

    name: ClassVar[str]
    codes: ClassVar[CodeTable]
    # The vendor rejects a second message carrying a reference it has seen,
    # so resending after an ambiguous failure cannot send the SMS twice.
    deduplicates_reference: ClassVar[bool] = False
    supports_batch: ClassVar[bool] = False

    def __init__(
        self,
        settings: SettingsT,
        client: httpx.AsyncClient,
        entry: ProviderEntry,
        *,
        report_url: str | None = None,
        gate: Gate | None = None,
        total_timeout: float = 60.0,
    ) -> None:
        self.settings = settings
        self.client = client
        self.entry = entry
        self.gate = gate
        self.total_timeout = total_timeout
        # Where the vendor should post delivery reports for this account;
        # None asks for no reports.
        self.report_url = report_url

    # -- the steps a vendor fills in -------------------------------------

    @abstractmethod
    def build_request(self, message: OutboundMessage) -> httpx.Request: ...

    @abstractmethod
    def parse_response(self, response: httpx.Response, message: OutboundMessage) -> Outcome: ...

    def build_batch_request(self, messages: Sequence[OutboundMessage]) -> httpx.Request:
        raise NotImplementedError(f"{self.name} has no batch endpoint")

    def parse_batch_response(
        self, response: httpx.Response, messages: Sequence[OutboundMessage]
    ) -> list[Outcome]:
        raise NotImplementedError(f"{self.name} has no batch endpoint")

    def auth(self) -> httpx.Auth | None:
        """The vendor's credentials as an `httpx.Auth`, applied to every request."""
        return None

    def batch_key(self, message: OutboundMessage) -> object:
        """Messages with equal keys may share one batch request."""
        return message.sender

    # -- delivery reports and status queries (see smsdispatch.providers.reports) -------

    # The vendor documents a query for one message's status, so messages
    # whose report never came can be reconciled by polling (`query_status`).
    supports_status_query: ClassVar[bool] = False

    @classmethod
    def parse_report(cls, incoming: IncomingReport) -> DeliveryReport:
        """One webhook request in the vendor's report form, normalized.

        Raises `MalformedReport` for anything that is not such a report.
        """
        raise MalformedReport(f"{cls.name} sends no delivery reports")

    # The vendor can list the messages it took by recipient, sender and time,
    # so a send whose answer was lost (no tracking id) can be found (`find_sent`).
    supports_sent_search: ClassVar[bool] = False

    async def find_sent(
        self, message: OutboundMessage, since: datetime, until: datetime
    ) -> list[DeliveryReport] | Outcome:
        """Reports for the vendor's messages that look like `message` (same
        recipient, sender and text) sent between `since` and `until`."""
        raise NotImplementedError(f"{self.name} cannot search what it sent")

    async def query_status(self, tracking_id: str) -> DeliveryReport | Outcome:
        """The vendor's current status of one message, as a report; or the
        `Outcome` saying why there is no answer now (network, credentials)."""
        raise NotImplementedError(f"{self.name} has no status query")

    # -- the shared flow --------------------------------------------------

    async def send(
        self, messages: Sequence[OutboundMessage], on_answers: AnswerHook | None = None
    ) -> list[Outcome]:
        """Send every message; return one outcome per message, in order.

        Never raises: what a vendor, the network, our configuration or a bug
        in a vendor module did is an outcome for the messages it touched.
        `on_answers` hears each request's outcomes the moment they are known,
        so the caller can keep them safe before the whole batch is done.
        """
        if not messages:
            return []
        missing = self.settings.missing(self.name)
        if missing:
            # Nothing leaves, nor takes the limiter's slots: a request without
            # its URL or credentials would fail naming the symptom, not the setting.
            verb = "is" if len(missing) == 1 else "are"
            why = self._misconfigured(f"{', '.join(missing)} {verb} not set")
            return [replace(why, message_id=m.id) for m in messages]
        groups: list[Sequence[OutboundMessage]]
        if self.supports_batch and self.entry.request_size > 1 and len(messages) > 1:
            groups = list(self.plan_batches(messages))
        else:
            groups = [[m] for m in messages]
        results = await asyncio.gather(
            *(self._send_and_tell(g, on_answers) for g in groups), return_exceptions=True
        )
        by_id: dict[int, Outcome] = {}
        for group, outs in zip(groups, results, strict=True):
            if isinstance(outs, BaseException):  # a bug past every guard: do not resend blindly
                log.error("%s: a request failed: %s", self.name, type(outs).__name__)
                outs = [self._maybe_sent(f"{type(outs).__name__} in the send flow")] * len(group)
            by_id.update({m.id: o for m, o in zip(group, outs, strict=True)})
        return [replace(by_id[m.id], message_id=m.id) for m in messages]

    def plan_batches(self, messages: Sequence[OutboundMessage]) -> Iterable[list[OutboundMessage]]:
        """Group messages by `batch_key`, at most `request_size` per request."""
        groups: dict[object, list[OutboundMessage]] = {}
        for message in messages:
            groups.setdefault(self.batch_key(message), []).append(message)
        for group in groups.values():
            size = self.entry.request_size_for(group[0].sender)
            for start in range(0, len(group), size):
                yield group[start : start + size]

    async def _send_and_tell(
        self, group: Sequence[OutboundMessage], on_answers: AnswerHook | None
    ) -> list[Outcome]:
        outcomes = await self._send_group(group)
        if on_answers is not None:
            try:
                on_answers(group, outcomes)
            except Exception:  # the answers must still reach the caller
                log.exception("%s: the answer hook failed", self.name)
        return outcomes

    async def _send_group(self, group: Sequence[OutboundMessage]) -> list[Outcome]:
        """One request's messages, start to end; every failure is an outcome.

        A group never raises: in a task's `gather`, one group's exception
        would abandon the others' answers, and those messages would be sent
        again. Where the failure happened decides what it means.
        """
        chosen: str | None = None
        if self.gate is not None:
            try:
                admitted = await self.gate.admit(group)
            except Exception as exc:
                return [
                    Outcome(
                        OutcomeKind.DEFERRED,
                        code="limiter_unavailable",
                        reason=f"rate limiter unreachable ({type(exc).__name__}); not sent",
                        retry_after=1.0,
                    )
                ] * len(group)
            if isinstance(admitted, Outcome):
                return [admitted] * len(group)
            if admitted[0].sender != group[0].sender:
                chosen = admitted[0].sender
            group = admitted
        outcomes = await self._call(group)
        return [replace(o, sender=chosen) for o in outcomes] if chosen else outcomes

    async def _call(self, group: Sequence[OutboundMessage]) -> list[Outcome]:
        """Build the request, send it, read the answer; the first stage that
        fails answers for every message of the group."""
        built = self._build(group)
        if isinstance(built, Outcome):
            return [built] * len(group)
        request, auth = built
        started = time.monotonic()
        response = await self._transmit(request, auth)
        if isinstance(response, Outcome):
            return [response] * len(group)
        seconds = time.monotonic() - started
        return [replace(o, seconds=seconds) for o in self._read(response, group)]

    def _build(
        self, group: Sequence[OutboundMessage]
    ) -> tuple[httpx.Request, httpx.Auth | None] | Outcome:
        """The request and its credentials, or why they could not be made."""
        try:
            if len(group) > 1:
                request = self.build_batch_request(group)
            else:
                request = self.build_request(group[0])
            return request, self.auth()
        except ConfigurationError as exc:
            return self._misconfigured(str(exc))
        except Exception as exc:
            log.exception("%s: building a request failed", self.name)
            return Outcome(
                OutcomeKind.RETRY,
                code="internal",
                reason=f"could not build the request: {type(exc).__name__}",
            )

    async def _transmit(
        self, request: httpx.Request, auth: httpx.Auth | None
    ) -> httpx.Response | Outcome:
        """The vendor's answer, or what a failed exchange means: where it
        failed says whether the message may have been sent."""
        try:
            # A bound on the whole request, well under the sweeper's deadline for
            # rows in `sending`: a vendor that trickles its answer cannot keep
            # a row long enough for a second worker to send it again.
            async with asyncio.timeout(self.total_timeout):
                return await self.client.send(request, auth=auth)
        except SlotMissed as exc:
            return Outcome(
                OutcomeKind.DEFERRED,
                code="rate_limit",
                reason=f"{self.name}: not sent, the worker was too slow for its slot ({exc})",
                retry_after=0.0,
            )
        except NOT_SENT_ERRORS as exc:
            return self._not_sent(exc)
        except (httpx.UnsupportedProtocol, httpx.LocalProtocolError) as exc:
            why = f"cannot send a request ({type(exc).__name__}): check the base URL setting"
            return self._misconfigured(why)
        except (httpx.TransportError, TimeoutError) as exc:
            return self._maybe_sent(f"{type(exc).__name__} after the request left")
        except Exception as exc:
            log.error("%s: sending failed: %s", self.name, type(exc).__name__)
            return self._maybe_sent(f"{type(exc).__name__} while sending")

    def _read(self, response: httpx.Response, group: Sequence[OutboundMessage]) -> list[Outcome]:
        """Each message's outcome from the vendor's answer."""
        try:
            if len(group) > 1:
                outcomes = self.parse_batch_response(response, group)
            else:
                outcomes = [self.parse_response(response, group[0])]
        except VendorProtocolError as exc:
            if response.is_success:
                return [self._maybe_sent(f"unreadable answer: {exc}", response)] * len(group)
            return [self.classify_http(response)] * len(group)
        except Exception as exc:
            log.exception("%s: reading the answer failed", self.name)
            return [
                self._maybe_sent(f"could not read the answer: {type(exc).__name__}", response)
            ] * len(group)
        return [self._apply_overrides(self.http_status_decides(o, response)) for o in outcomes]

    def _misconfigured(self, why: str) -> Outcome:
        """Our setup is wrong (a missing credential, a bad URL): pause the vendor
        with the operator's fix as the reason, and fail no message for it."""
        log.error("%s is misconfigured: %s", self.name, why)
        return Outcome(OutcomeKind.ACCOUNT, code="configuration", reason=why)

    def _not_sent(self, exc: Exception) -> Outcome:
        return Outcome(
            OutcomeKind.RETRY,
            code=type(exc).__name__,
            reason=f"request did not reach {self.name}: {type(exc).__name__}",
        )

    def _maybe_sent(self, why: str, response: httpx.Response | None = None) -> Outcome:
        raw = clip_raw(response.text) if response is not None else None
        if self.deduplicates_reference:
            return Outcome(
                OutcomeKind.RETRY,
                code="ambiguous",
                reason=f"{why}; resending is safe: {self.name} rejects a repeated reference",
                raw=raw,
                maybe_sent=True,
            )
        return Outcome(
            OutcomeKind.AMBIGUOUS, code="ambiguous", reason=why, raw=raw, maybe_sent=True
        )

    def _apply_overrides(self, outcome: Outcome) -> Outcome:
        if outcome.code is not None and outcome.code in self.entry.code_overrides:
            return outcome.reclassified(self.entry.code_overrides[outcome.code])
        return outcome

    # -- helpers for vendor modules ---------------------------------------

    def classify_http(
        self, response: httpx.Response, *, code: str | None = None, reason: str | None = None
    ) -> Outcome:
        """The generic meaning of an HTTP status, for answers outside the
        vendor's documented body."""
        status = response.status_code
        raw = clip_raw(response.text)
        code = code or str(status)
        reason = reason or response.reason_phrase or f"HTTP {status}"
        if status == 429:
            return Outcome(
                OutcomeKind.RATE_LIMITED,
                code=code,
                reason=reason,
                raw=raw,
                retry_after=retry_after_seconds(response),
            )
        if status in (401, 402, 403):
            # 402 Payment Required: the account's balance, not this message.
            return Outcome(OutcomeKind.ACCOUNT, code=code, reason=reason, raw=raw)
        if status == 404:
            # The endpoint is not there: a wrong base URL or account path would
            # fail every message alike, so pause the vendor instead.
            return Outcome(
                OutcomeKind.ACCOUNT,
                code=code,
                raw=raw,
                reason=f"{reason}: check the base URL setting",
            )
        if status >= 500 or status == 408:
            return Outcome(OutcomeKind.RETRY, code=code, reason=reason, raw=raw)
        if status >= 400:
            return Outcome(OutcomeKind.PERMANENT, code=code, reason=reason, raw=raw)
        if status >= 300:
            # A redirect means the base URL is not the API's: pause the vendor
            # with a reason an operator can act on, instead of failing anything.
            return Outcome(
                OutcomeKind.ACCOUNT,
                code=code,
                raw=raw,
                reason=f"HTTP {status} redirect: check the base URL setting",
            )
        raise VendorProtocolError(f"HTTP {status} with an unreadable body")

    def classify_undocumented(
        self, response: httpx.Response, code: str | None, reason: str | None
    ) -> Outcome:
        """A vendor code that is not in the vendor's table.

        Undocumented (`Outcome.undocumented_code`: retried, never failed at
        once, and counted towards pausing the vendor) only where the HTTP
        status gives the answer no class of its own: a 2xx, or a plain 4xx.
        Otherwise the status decides (`http_status_decides`).
        """
        undocumented = Outcome.undocumented_code(
            code, reason=reason, raw=response.text, retry_after=retry_after_seconds(response)
        )
        return self.http_status_decides(undocumented, response)

    def http_status_decides(self, outcome: Outcome, response: httpx.Response) -> Outcome:
        """An undocumented code on an answer whose HTTP status says what it is
        (a 5xx or 408: retry; 429: throttle; 401/402/403: the account; 404 or a
        redirect: our URL) takes that class and is no longer undocumented.

        Those are a vendor's ordinary errors, whatever code it put in the body:
        counted as undocumented, five 5xx answers from a vendor having a bad
        minute would pause it for `pause_seconds` (limits/pauses.py). The
        shared flow applies this to every answer it parses, so a vendor module
        that classifies a body code on any status (Cue) is held to it too.
        """
        if not outcome.undocumented or response.status_code < 300:
            return outcome
        generic = self.classify_http(response, code=outcome.code, reason=outcome.reason)
        if generic.kind is OutcomeKind.PERMANENT:
            # A plain 4xx says only "refused": it would fail the message for
            # a code nobody documented, so the code stays undocumented.
            return outcome
        return replace(
            outcome,
            kind=generic.kind,
            reason=generic.reason,
            retry_after=outcome.retry_after
            if outcome.retry_after is not None
            else generic.retry_after,
            undocumented=False,
        )


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The body as a JSON object, or `VendorProtocolError`."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise VendorProtocolError(f"body is not JSON (HTTP {response.status_code})") from exc
    if not isinstance(body, dict):
        raise VendorProtocolError(f"body is JSON but not an object (HTTP {response.status_code})")
    return body


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Retry-After as seconds, whether given as a number or an HTTP date.

    A date is read against the response's own Date header, both from the
    vendor's clock: against ours, a host minutes off would wait minutes too
    long or not at all. Without a Date header, the date cannot be read
    safely and the caller's default wait applies.
    """
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
        sent = email.utils.parsedate_to_datetime(response.headers.get("date", ""))
        return max(0.0, (when - sent).total_seconds())
    except (TypeError, ValueError):  # unreadable, or one with a zone and one without
        return None
