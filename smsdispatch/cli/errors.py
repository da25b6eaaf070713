"""Every `smsdispatch` command fails the same way: one line, a non-zero exit.

The line names what is wrong and what to do about it (`database at ... has
no tables: run smsdispatch db upgrade`); the traceback is printed only with
`smsdispatch --debug ...`. This is done once, around the whole app
(`CliApp.__call__`), not in each command: a command lets the error rise and
`explain` turns it into the line, so a command added later fails the same
way without a line of its own.

Exit codes: 2 for what the operator asked (bad input, a state that refuses
it, something named that does not exist), 1 for what is around the command
(Redis, the database, a vendor, the configuration, anything unforeseen).

Log records (the producer warns when the broker is away) lose their
tracebacks too, unless --debug: one record, one line.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import typer

from smsdispatch.vocabulary.errors import (
    ConflictError,
    InputError,
    NotFoundError,
    SmsdispatchError,
)

OPERATOR = 2  # the operator's request is wrong: the same command fails again
AROUND = 1  # Redis, the database, a vendor, the configuration

UPGRADE = "run smsdispatch db upgrade"
# SQLite's and PostgreSQL's words for a table or column this version needs.
MISSING_SCHEMA = re.compile(r"no such (table|column)|(relation|column) .*does not exist")


@dataclass(frozen=True)
class Failure:
    line: str
    code: int = AROUND


Explainer = Callable[[BaseException], Failure]


class _Options:
    debug = False


options = _Options()


class CliApp(typer.Typer):
    """A Typer app whose errors reach the operator as one line (`explain`)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except Exception as exc:
            if options.debug:
                raise
            try:
                failure = explain(exc)
            except Exception:  # explaining must not end in a traceback either
                failure = Failure(f"{type(exc).__name__}: {one_line(exc)}")
            print(f"smsdispatch: {failure.line}", file=sys.stderr)
            sys.exit(failure.code)


def set_debug(debug: bool) -> None:
    """`--debug`: tracebacks stay, in errors and in log records."""
    options.debug = debug
    if not debug:
        for handler in logging.getLogger().handlers:
            handler.addFilter(_without_traceback)


def _without_traceback(record: logging.LogRecord) -> bool:
    if record.exc_info and record.exc_info[1] is not None:
        cause = one_line(record.exc_info[1])
        # The message is %-formatted with its arguments later: keep a % in
        # the error's words from being read as a placeholder.
        record.msg = f"{record.msg} ({cause.replace('%', '%%') if record.args else cause})"
    record.exc_info = None
    record.exc_text = None
    return True


def fail(message: str, code: int = OPERATOR) -> NoReturn:
    """End a command the way every error ends one: one line on stderr, an exit code."""
    typer.echo(f"smsdispatch: {message}", err=True)
    raise typer.Exit(code)


def explain(exc: BaseException) -> Failure:
    """The one line (and exit code) for an error that reached the top."""
    for kinds, explainer in _explainers():
        if isinstance(exc, kinds):
            return explainer(exc)
    return Failure(
        f"unexpected {type(exc).__name__}: {one_line(exc)} "
        "(smsdispatch --debug ... shows the traceback)"
    )


def one_line(exc: BaseException) -> str:
    """The first line of the error's message, or its type if it has none."""
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


# -- explainers, one per family of error ---------------------------------------


def _ours(exc: BaseException) -> Failure:
    operator = isinstance(exc, InputError | NotFoundError | ConflictError)
    return Failure(one_line(exc), OPERATOR if operator else AROUND)


def _redis(exc: BaseException) -> Failure:
    import redis

    where = f"Redis at {redis_location()}"
    if isinstance(exc, redis.AuthenticationError):
        return Failure(f"{where} refused our credentials: check REDIS_URL")
    if isinstance(exc, redis.TimeoutError):
        return Failure(f"{where} did not answer in time: is it overloaded, or the port wrong?")
    if isinstance(exc, redis.ConnectionError) or not isinstance(exc, redis.RedisError):
        if _refused(exc):
            return Failure(f"{where} refused the connection: start Redis or set REDIS_URL")
        return Failure(f"{where} cannot be reached ({one_line(exc)}): start it or set REDIS_URL")
    return Failure(f"{where}: {one_line(exc)}")


def _refused(exc: BaseException) -> bool:
    """Whether the connection was refused (redis.asyncio words it "Connect
    call failed"; the cause says it plainly)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError) or "refused" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _database(exc: BaseException) -> Failure:
    from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

    url = database_location()
    cause = one_line(exc.orig) if isinstance(exc, DBAPIError) and exc.orig else one_line(exc)
    lowered = cause.lower()
    if isinstance(exc, OperationalError | ProgrammingError) and MISSING_SCHEMA.search(lowered):
        return Failure(schema_problem())
    if "unable to open database file" in lowered:
        return Failure(f"database at {url} does not exist: {UPGRADE} (it creates it)")
    if isinstance(exc, OperationalError):
        return Failure(
            f"database at {url} cannot be reached ({cause}): start it or set DATABASE_URL"
        )
    return Failure(f"database at {url}: {cause}")


def _vendor(exc: BaseException) -> Failure:
    import httpx

    assert isinstance(exc, httpx.HTTPError)
    try:
        url = exc.request.url
        # Scheme, host and port only: a vendor's query may hold credentials (Cue).
        where = f"{url.scheme}://{url.netloc.decode()}"
    except RuntimeError:  # no request attached
        where = "a vendor"
    return Failure(
        f"{where} cannot be reached ({type(exc).__name__}): check the vendor's *__BASE_URL"
    )


def _settings(exc: BaseException) -> Failure:
    from pydantic import ValidationError

    if isinstance(exc, ValidationError) and exc.title == "Settings":
        first = exc.errors()[0]
        name = "__".join(str(part) for part in first["loc"]).upper()
        return Failure(f"setting {name}: {first['msg']} (in the environment or .env)")
    if isinstance(exc, ValidationError):
        return Failure(f"invalid {exc.title}: {exc.errors()[0]['msg']}", OPERATOR)
    return Failure(f"settings: {one_line(exc)} (in the environment or .env)")


def _file(exc: BaseException) -> Failure:
    assert isinstance(exc, OSError)
    if exc.filename is not None:
        return Failure(f"{exc.strerror or one_line(exc)}: {exc.filename}", OPERATOR)
    return Failure(one_line(exc))


def _explainers() -> list[tuple[tuple[type[BaseException], ...], Explainer]]:
    """Which explainer takes which errors; the libraries are imported on first
    use, so `smsdispatch --help` stays quick."""
    import httpx
    import redis
    from kombu.exceptions import OperationalError as BrokerError
    from pydantic import ValidationError
    from pydantic_settings import SettingsError
    from sqlalchemy.exc import SQLAlchemyError

    return [
        ((SmsdispatchError,), _ours),
        ((redis.RedisError, BrokerError), _redis),
        ((SQLAlchemyError,), _database),
        ((httpx.HTTPError,), _vendor),
        ((ValidationError, SettingsError), _settings),
        ((OSError,), _file),
    ]


# -- where things are, without their passwords ----------------------------------


def redis_location() -> str:
    return hide_password(_setting("redis_url"))


def database_location() -> str:
    """The database as the operator knows it: a SQLite file's path, or the URL."""
    url = _setting("database_url")
    path = sqlite_path(url)
    return str(path) if path is not None else hide_password(url)


def _setting(name: str) -> str:
    from smsdispatch.config.settings import get_settings

    try:
        return str(getattr(get_settings(), name))
    except Exception:  # the settings themselves are wrong: said elsewhere
        return "(unreadable settings)"


def hide_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return parts._replace(netloc=f"{user}{host}{port}").geturl()


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for another database or an in-memory one)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    if parsed.database == ":memory:":
        return None
    return Path(parsed.database).expanduser().absolute()


def schema_problem() -> str:
    """Why the database's tables are not what this version needs, and the fix."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from smsdispatch.config.settings import get_settings
    from smsdispatch.store.db import make_engine
    from smsdispatch.store.migrate import alembic_config

    url = get_settings().database_url
    where = f"database at {database_location()}"
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
    if current is None:
        return f"{where} has no tables: {UPGRADE}"
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    if current != head:
        return f"{where} is at migration {current}, this version needs {head}: {UPGRADE}"
    return (
        f"{where} is at the latest migration but lacks a table or column: was it altered by hand?"
    )
