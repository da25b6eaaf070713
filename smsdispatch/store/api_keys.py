"""API keys kept in the database, hashed: created, listed, revoked at run time.

A key is 256 random bits shown once, when it is created; only its SHA-256 is
stored. A lookup by hash needs no constant-time compare: the hash of a
guess says nothing about the hashes stored. A revoked key is refused from
the next request on (the API reads this table on every request that does
not carry one of the environment's API_KEYS; nothing is cached).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from smsdispatch.store.models import api_keys
from smsdispatch.vocabulary.errors import ConflictError, NotFoundError

# Marks our keys in logs and secret scanners; the rest is the random part.
PREFIX = "sdk_"


class ApiKeyNameTaken(ConflictError, ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"an API key named {name!r} exists: revoke it or choose another name")


class ApiKeyNotFound(NotFoundError, LookupError):
    def __init__(self, which: str) -> None:
        super().__init__(f"no API key named or numbered {which!r} that is not revoked")


@dataclass(frozen=True, slots=True)
class ApiKeyRow:
    id: int
    name: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key just made: the key and its callback signing secret are shown only now."""

    id: int
    key: str
    callback_secret: str


@dataclass(frozen=True, slots=True)
class KeyCallbacks:
    """What a request's key says of status callbacks: the key's id (None for
    an API_KEYS key), its default callback URL, and whether it has a secret
    of its own to sign them (else CALLBACK_SECRET does)."""

    key_id: int | None
    callback_url: str | None
    signs: bool = False

    @property
    def signing_key_id(self) -> int | None:
        """The key whose secret signs its messages' callbacks; None: CALLBACK_SECRET."""
        return self.key_id if self.signs else None


# A callback signing secret: 256 random bits, prefixed like Stripe's `whsec_`.
SECRET_PREFIX = "sdcs_"  # noqa: S105 - a prefix, not a secret


def new_key() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create(
    session: Session, name: str, now: datetime, *, callback_url: str | None = None
) -> NewKey:
    """A new key named `name`, with its own callback signing secret and
    `callback_url` as its messages' default status callback."""
    key = new_key()
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    try:
        with session.begin_nested():
            key_id = session.execute(
                insert(api_keys)
                .values(
                    name=name,
                    key_hash=hash_key(key),
                    created_at=now,
                    callback_url=callback_url,
                    callback_secret=secret,
                )
                .returning(api_keys.c.id)
            ).scalar_one()
    except IntegrityError:
        raise ApiKeyNameTaken(name) from None
    return NewKey(key_id, key, secret)


def all_keys(session: Session) -> list[ApiKeyRow]:
    """Every key, revoked ones too, oldest first; never the keys themselves."""
    k = api_keys.c
    rows = session.execute(select(k.id, k.name, k.created_at, k.revoked_at).order_by(k.id))
    return [ApiKeyRow(*row) for row in rows]


def revoke(session: Session, which: str, now: datetime) -> ApiKeyRow:
    """Revoke the key not yet revoked numbered `which` (all digits) or named `which`."""
    k = api_keys.c
    chosen = k.id == int(which) if which.isdigit() else k.name == which
    row = session.execute(
        update(api_keys)
        .where(chosen, k.revoked_at.is_(None))
        .values(revoked_at=now)
        .returning(k.id, k.name, k.created_at, k.revoked_at)
    ).first()
    if row is None:
        raise ApiKeyNotFound(which)
    return ApiKeyRow(*row)


def key_callbacks(session: Session, key: str) -> KeyCallbacks | None:
    """The status-callback settings of the live key `key`, or None.

    A key made before migration 0015 has no secret of its own: its
    callbacks are signed with CALLBACK_SECRET, as an API_KEYS key's are.
    """
    k = api_keys.c
    row = session.execute(
        select(k.id, k.callback_url, k.callback_secret).where(
            k.key_hash == hash_key(key), k.revoked_at.is_(None)
        )
    ).first()
    if row is None:
        return None
    return KeyCallbacks(row.id, row.callback_url, signs=bool(row.callback_secret))


def active_key_name(session: Session, key: str) -> str | None:
    """The name of the key `key` if it exists and is not revoked."""
    k = api_keys.c
    return session.execute(
        select(k.name).where(k.key_hash == hash_key(key), k.revoked_at.is_(None))
    ).scalar_one_or_none()
