"""The producer API: validate, commit rows, then enqueue their ids.

Rows are committed before anything reaches the broker: once `send` returns
an id, the message exists in the database as `queued`, and the sweeper
enqueues it again if the broker loses it or never got it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import redis
from celery import Celery
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from smsdispatch.config.catalog import Catalog
from smsdispatch.config.settings import Settings
from smsdispatch.producer.validation import (
    InvalidMessage,
    SendRequest,
    Validator,
    ValidMessage,
    is_routed,
)
from smsdispatch.queueing.publish import publish
from smsdispatch.routing.router import Router, Snapshot
from smsdispatch.store.clock import Clock
from smsdispatch.store.db import Database
from smsdispatch.store.messages import ids_by_idempotency_key, insert_queued
from smsdispatch.store.optouts import opted_out

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int
    field: str
    reason: str


@dataclass
class BatchResult:
    """Ids in request order for the accepted; each rejected one with why."""

    ids: dict[int, int] = field(default_factory=dict)  # request index -> message id
    rejected: list[Rejection] = field(default_factory=list)
    duplicates: int = 0  # requests whose idempotency key was already stored


class Producer:
    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        db: Database,
        celery: Celery,
        *,
        default_region: str | None = None,
        clock: Clock | None = None,
        router: Router | None = None,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.db = db
        # The database's clock by default: `next_attempt_at` is compared by
        # workers and the sweeper on other hosts (store/clock.py).
        self.clock = clock or db.clock
        self.celery = celery
        self.validator = Validator(settings, catalog, default_region)
        self._router = router

    @property
    def router(self) -> Router:
        """Made on the first message that names no vendor: a producer whose
        messages all name theirs never needs Redis for routing."""
        if self._router is None:
            client = redis.Redis.from_url(
                self.settings.redis_url, socket_timeout=5, socket_connect_timeout=2
            )
            self._router = Router(self.catalog, client)
        return self._router

    def send(self, request: SendRequest) -> int:
        """Store and enqueue one message; `InvalidMessage` names the bad field."""
        result = self.send_batch([request])
        if result.rejected:
            bad = result.rejected[0]
            raise InvalidMessage(bad.field, bad.reason)
        return result.ids[0]

    def send_batch(self, requests: Sequence[SendRequest]) -> BatchResult:
        """Store the valid messages in one transaction and enqueue them.

        Invalid ones are reported by index and cost the rest nothing.
        """
        result = BatchResult()
        valid: list[tuple[int, ValidMessage]] = []
        routing = self._routing(requests)
        for index, request in enumerate(requests):
            try:
                valid.append((index, self.validator.validate(request, routing)))
            except InvalidMessage as exc:
                result.rejected.append(Rejection(index, exc.field, exc.reason))
        valid = self._without_opted_out(valid, result)
        result.rejected.sort(key=lambda r: r.index)
        if not valid:
            return result
        new = self._store(valid, result)
        if new:
            try:
                publish(self.celery, self.catalog, new)
            except Exception:
                log.warning(
                    "could not reach the broker; %d stored messages will be enqueued "
                    "by the sweeper",
                    len(new),
                    exc_info=True,
                )
        return result

    def _routing(self, requests: Sequence[SendRequest]) -> Snapshot | None:
        """One look at routing's state for the batch, if any message names no vendor."""
        if not any(is_routed(r.provider) for r in requests):
            return None
        return self.router.snapshot(self.clock())

    def _without_opted_out(
        self, valid: list[tuple[int, ValidMessage]], result: BatchResult
    ) -> list[tuple[int, ValidMessage]]:
        with self.db.session() as session:
            blocked = opted_out(session, (v.recipient for _, v in valid))
        for index, v in valid:
            if v.recipient in blocked:
                result.rejected.append(Rejection(index, "to", "the recipient has opted out"))
        return [(i, v) for i, v in valid if v.recipient not in blocked]

    def _store(
        self, valid: list[tuple[int, ValidMessage]], result: BatchResult
    ) -> list[tuple[int, str, int]]:
        """Insert rows; return (id, provider, priority) of the newly stored ones."""
        now = self.clock()
        for attempt in range(2):
            try:
                with self.db.session() as session, session.begin():
                    existing = self._existing_keys(session, [v for _, v in valid])
                    fresh = [
                        (i, v)
                        for i, v in valid
                        if v.idempotency_key is None or v.idempotency_key not in existing
                    ]
                    for index, v in valid:
                        if v.idempotency_key in existing:
                            result.ids[index] = existing[v.idempotency_key]
                            result.duplicates += 1
                    ids = self._insert(session, [v for _, v in fresh], now)
            except IntegrityError:
                # Another producer stored the same idempotency key meanwhile:
                # the second pass finds it as existing.
                result.ids.clear()
                result.duplicates = 0
                if attempt:
                    raise
                continue
            for (index, _), message_id in zip(fresh, ids, strict=True):
                result.ids[index] = message_id
            return [
                (message_id, v.provider, v.priority)
                for (_, v), message_id in zip(fresh, ids, strict=True)
            ]
        raise AssertionError("unreachable")

    @staticmethod
    def _existing_keys(session: Session, batch: list[ValidMessage]) -> dict[str, int]:
        return ids_by_idempotency_key(
            session, [v.idempotency_key for v in batch if v.idempotency_key]
        )

    @staticmethod
    def _insert(session: Session, batch: list[ValidMessage], now: datetime) -> list[int]:
        return insert_queued(session, [_fields(v) for v in batch], now)


def _fields(v: ValidMessage) -> dict[str, object]:
    """A valid message's own columns (store/messages.py adds status and times)."""
    return {
        "provider": v.provider,
        "sender": v.sender,
        "route": v.route,
        "recipient": v.recipient,
        "text": v.text,
        "encoding": v.encoding.value,
        "segments": v.segments,
        "client_reference": v.client_reference,
        "idempotency_key": v.idempotency_key,
        "priority": v.priority,
        "status_callback": v.status_callback,
        "callback_key_id": v.callback_key_id,
    }
