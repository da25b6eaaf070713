"""One status callback's POST: its body, its signature, and what the answer means.

    2xx                                   delivered
    connection error, timeout, 5xx, 429   retried with exponential back-off and
                                          jitter (Retry-After honoured), for
                                          CALLBACK_RETRY_PERIOD_SECONDS, then failed
    any other answer (4xx, 3xx)           failed at once: the receiver refused
                                          it, and the same body will not change
                                          its mind (redirects are not followed)
    a URL that now resolves to a private  failed at once
    address, no secret to sign with

The answer's body is read up to CALLBACK_MAX_RESPONSE_BYTES and kept only in
the row's `last_error` when it is not a 2xx: a receiver that streams forever
costs nothing more than that.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx

from smsdispatch.config.settings import Settings
from smsdispatch.producer.callback_urls import RefusedCallbackUrl, check_url_async
from smsdispatch.store.callbacks import CallbackState, DueCallback, Verdict
from smsdispatch.vocabulary.signatures import HEADER, signature_header

USER_AGENT = "smsdispatch-callbacks/1"


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def body(due: DueCallback) -> bytes:
    """The JSON the receiver gets: compact, keys sorted, so it is the same bytes every retry."""
    document = {
        "id": due.message_id,
        "client_reference": due.client_reference,
        "event": due.event,
        "status": due.status,
        "vendor": due.provider,
        "tracking_id": due.tracking_id,
        "error_code": due.error_code,
        "error_reason": due.error_reason,
        "changed_at": _iso(due.changed_at),
        "created_at": _iso(due.created_at),
        "sequence": due.id,
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


@dataclass(frozen=True, slots=True)
class Answer:
    """What came back: a status code (None: no answer) and why, for the row."""

    status: int | None
    error: str | None = None
    retry_after: float | None = None
    refused: bool = False  # we would not post it (the URL, the secret): final


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds from now: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


async def post(
    client: httpx.AsyncClient,
    due: DueCallback,
    secret: str,
    settings: Settings,
    now: datetime,
    check: Callable[[str], Awaitable[None]] | None = None,
) -> Answer:
    """POST the callback, signed with `now` (the database clock), reading at
    most CALLBACK_MAX_RESPONSE_BYTES of the answer."""
    payload = body(due)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        HEADER: signature_header(payload, secret, int(now.timestamp())),
    }
    limit = settings.callback_max_response_bytes
    try:
        async with asyncio.timeout(settings.callback_timeout_seconds):
            if check is None:
                await check_url_async(due.url, allow_private=settings.callback_allow_private)
            else:
                await check(due.url)
            async with client.stream("POST", due.url, content=payload, headers=headers) as response:
                read = b""
                async for chunk in response.aiter_raw():
                    read += chunk
                    if len(read) >= limit:
                        break
    except RefusedCallbackUrl as exc:
        return Answer(None, f"refused: {exc}", refused=True)
    except TimeoutError:
        return Answer(None, f"no answer within {settings.callback_timeout_seconds:g}s")
    except httpx.HTTPError as exc:
        return Answer(None, f"{type(exc).__name__}: {exc}"[:500])
    if 200 <= response.status_code < 300:
        return Answer(response.status_code)
    text = read[:limit].decode("utf-8", "replace")
    return Answer(
        response.status_code,
        f"HTTP {response.status_code}: {text}"[:1000],
        retry_after_seconds(response.headers.get("Retry-After"), now),
    )


def retryable(answer: Answer) -> bool:
    """No answer (but not a refused URL), a 5xx or a 429."""
    if answer.status is None:
        return not answer.refused
    return answer.status == 429 or answer.status >= 500


def backoff(attempts: int, settings: Settings, rng: random.Random) -> float:
    """Exponential from CALLBACK_RETRY_FIRST_SECONDS, capped, with half of it jitter."""
    ceiling = min(
        settings.callback_retry_max_seconds,
        settings.callback_retry_first_seconds * 2 ** max(0, attempts - 1),
    )
    return float(ceiling / 2 + rng.uniform(0, ceiling / 2))


def verdict(
    due: DueCallback, answer: Answer, settings: Settings, now: datetime, rng: random.Random
) -> Verdict:
    """Delivered, retried at some time, or failed: what to write for this answer."""
    if answer.status is not None and 200 <= answer.status < 300:
        return Verdict(due.id, due.claim_token, CallbackState.DELIVERED, now, answer.status)
    if not retryable(answer):
        return Verdict(
            due.id, due.claim_token, CallbackState.FAILED, now, answer.status, answer.error
        )
    wait = backoff(due.attempts, settings, rng)
    if answer.retry_after is not None:
        wait = max(wait, answer.retry_after)
    retry_at = now + timedelta(seconds=wait)
    deadline = due.retry_from + timedelta(seconds=settings.callback_retry_period_seconds)
    if retry_at > deadline:
        error = f"{answer.error} (retried for {settings.callback_retry_period_seconds:g}s)"
        return Verdict(due.id, due.claim_token, CallbackState.FAILED, now, answer.status, error)
    return Verdict(
        due.id,
        due.claim_token,
        CallbackState.PENDING,
        now,
        answer.status,
        answer.error,
        retry_at=retry_at,
    )
