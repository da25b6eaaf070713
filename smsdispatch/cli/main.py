"""`smsdispatch`: send, simulate, migrate, inspect, and run the demo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from smsdispatch.cli import campaign, cancel, keys, optout, routes, vendor
from smsdispatch.cli.errors import (
    CliApp,
    database_location,
    fail,
    hide_password,
    set_debug,
    sqlite_path,
)
from smsdispatch.config.catalog import load_catalog
from smsdispatch.config.logs import configure
from smsdispatch.config.settings import get_settings

# Errors reach the operator as one line (cli/errors.py); --debug keeps the
# plain traceback (never rich's, which prints local variables: credentials).
app = CliApp(
    help="Distributed bulk SMS sender.", no_args_is_help=True, pretty_exceptions_enable=False
)
db_app = typer.Typer(help="The results database.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(campaign.app, name="campaign")
app.add_typer(optout.app, name="optout")
app.add_typer(vendor.app, name="vendor")
app.add_typer(keys.app, name="keys")
app.command()(cancel.cancel)
app.add_typer(routes.app, name="routes")
console = Console()


@app.callback()
def _setup(
    log_level: Annotated[str, typer.Option(help="Python log level.")] = "WARNING",
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback of an error, not one line.")
    ] = False,
) -> None:
    configure(log_level.upper())
    set_debug(debug)


@app.command()
def send(
    to: Annotated[str, typer.Option(help="Recipient, E.164 (+27...) or local with --region.")],
    text: Annotated[str, typer.Option(help="Message text.")],
    provider: Annotated[
        str | None,
        typer.Option(
            help="Vendor: cue, messangi, smsbuddy, restcomm, skycore; "
            "left out: routed by the catalog's routes."
        ),
    ] = None,
    sender: Annotated[str | None, typer.Option(help="Sender id (default: the vendor's).")] = None,
    idempotency_key: Annotated[str | None, typer.Option(help="Same key, same message.")] = None,
    client_reference: Annotated[str | None, typer.Option(help="Your own reference.")] = None,
    region: Annotated[str | None, typer.Option(help="Region for local numbers, e.g. ZA.")] = None,
    status_callback: Annotated[
        str | None,
        typer.Option(help="URL to POST each status change to, signed with CALLBACK_SECRET."),
    ] = None,
) -> None:
    """Validate, store and enqueue one message; print its id."""
    from smsdispatch.producer.api import Producer
    from smsdispatch.producer.validation import InvalidMessage, SendRequest
    from smsdispatch.store.db import Database
    from smsdispatch.workers.app import create_app

    settings = get_settings()
    # Refuse before storing: a message stored while the broker is away is
    # sent only when the sweeper finds it, and the operator would not know.
    _ping_redis(settings.redis_url)
    producer = Producer(
        settings,
        load_catalog(settings.catalog_path),
        Database(settings.database_url),
        create_app(settings),
        default_region=region,
    )
    try:
        message_id = producer.send(
            SendRequest(
                to,
                text,
                provider,
                sender,
                client_reference,
                idempotency_key,
                status_callback=status_callback,
            )
        )
    except InvalidMessage as exc:
        fail(f"rejected: {exc}")
    console.print(message_id)


@app.command()
def api(
    host: Annotated[str, typer.Option(envvar="API_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="API_PORT")] = 8000,
) -> None:
    """Serve the HTTP API (API keys from API_KEYS, a JSON list)."""
    import uvicorn

    from smsdispatch.api.app import create_app
    from smsdispatch.config.garbage import collect_less

    app = create_app(get_settings())
    collect_less()
    uvicorn.run(app, host=host, port=port, access_log=False)


@app.command()
def simulate(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8900,
    env_file: Annotated[
        Path | None,
        typer.Option(
            help="Also set the lines in this file (e.g. .env): each setting replaced "
            "where it stands or added; every other line kept."
        ),
    ] = None,
    api_url: Annotated[
        str | None,
        typer.Option(
            help="Where the API takes delivery reports (PUBLIC_BASE_URL); default: "
            "PUBLIC_BASE_URL, else http://127.0.0.1:8000 (smsdispatch api, make api)."
        ),
    ] = None,
    reports: Annotated[
        bool,
        typer.Option(
            "--reports/--no-reports",
            help="Post a delivery report for every accepted message a second later "
            "(90% delivered, 5% undelivered, 5% expired).",
        ),
    ] = True,
) -> None:
    """Serve the five vendor simulators, and print the settings that point
    workers, beat and the API at them (credentials from the environment where
    set, else the simulators' own)."""
    from smsdispatch.local.environment import simulator_setup, write_env_file
    from smsdispatch.local.simulators import serve_forever, standalone_reports_in_words

    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
    root = f"http://{shown}:{port}"
    setup = simulator_setup(get_settings(), root, api_url)
    say = typer.echo  # plain lines: rich would wrap or colour them
    say(f"# vendor simulators on {root}/<vendor> (inspect and control: {root}/_sim/<vendor>/)")
    if reports:
        say(
            f"# delivery reports on: {standalone_reports_in_words()}, posted to "
            f"{setup.settings.public_base_url}/reports/<vendor>/... (the API: smsdispatch api)"
        )
    else:
        say("# delivery reports off (--no-reports): messages stay `accepted`")
    say("# settings for workers, beat and the API (the environment or .env):")
    for name, value in setup.lines.items():
        say(f"{name}={value}")
    for name in setup.kept:
        say(f"# {name}: kept as set in the environment")
    if env_file is not None:
        write_env_file(env_file, setup.lines, f"# smsdispatch simulate: vendors at {root}")
        say(f"# written to {env_file}")
    serve_forever(setup.settings, host, port, reports=reports)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply the Alembic migrations to DATABASE_URL."""
    from smsdispatch.store.migrate import upgrade

    url = get_settings().database_url
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    upgrade(url, revision)
    console.print(f"database {database_location()} at {revision}")


@app.command()
def status() -> None:
    """Messages by vendor and status, and any vendor pauses with their reasons."""
    import redis

    from smsdispatch.analytics.tables import status_table
    from smsdispatch.limits.pauses import current_pause
    from smsdispatch.store.db import Database
    from smsdispatch.store.outbox import status_counts

    settings = get_settings()
    catalog = load_catalog(settings.catalog_path)
    db = Database(settings.database_url)
    with db.session() as session:
        counts = status_counts(session)
    vendors = list(catalog.providers)
    client = redis.Redis.from_url(settings.redis_url)
    client.ping()
    paused = [(v, p) for v in vendors if (p := current_pause(client, v, db.clock())) is not None]
    # One line however narrow the terminal: an operator copies the path.
    console.print(
        f"database {database_location()}   redis {hide_password(settings.redis_url)}",
        soft_wrap=True,
        markup=False,
        highlight=False,
    )
    console.print(status_table(counts, vendors))
    for name, pause in paused:
        console.print(f"{name} paused {pause.until_text}: {pause.reason}", markup=False)


def _ping_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.ping()
    finally:
        client.close()


@app.command()
def limits() -> None:
    """Every rate limit, how far ahead it is booked, and the messages waiting."""
    import asyncio

    import redis
    import redis.asyncio as aioredis

    from smsdispatch.limits.pauses import current_pause
    from smsdispatch.limits.view import LimitRow, limit_rows, limits_table, waiting_counts
    from smsdispatch.store.db import Database

    settings = get_settings()
    catalog = load_catalog(settings.catalog_path)
    db = Database(settings.database_url)
    now = db.clock()
    with db.session() as session:
        waiting = waiting_counts(session, now)

    async def collect() -> list[LimitRow]:
        client = aioredis.Redis.from_url(settings.redis_url)
        try:
            return await limit_rows(catalog, client, waiting, settings.limiter_jitter_seconds)
        finally:
            await client.aclose()

    sync_client = redis.Redis.from_url(settings.redis_url)
    rows = asyncio.run(collect())
    states = {}
    for provider in {row.provider for row in rows}:
        pause = current_pause(sync_client, provider, now)
        quiet = catalog.get(provider).quiet_hours
        opens = quiet.next_open(now) if quiet else None
        states[provider] = (
            f"paused: {pause.reason}"
            if pause
            else f"quiet until {opens:%H:%M} UTC"
            if opens
            else "sending"
        )
    console.print(limits_table(rows, states))


@app.command()
def balance() -> None:
    """SMSBuddy's account balance per service (the only vendor documenting one)."""
    import asyncio

    from smsdispatch.providers.registry import build_adapter
    from smsdispatch.providers.smsbuddy import SMSBuddyAdapter
    from smsdispatch.providers.transport import vendor_client

    settings = get_settings()

    async def fetch() -> dict[str, int]:
        async with vendor_client(
            connect_timeout=settings.http_connect_timeout_seconds,
            read_timeout=settings.http_read_timeout_seconds,
            max_connections=1,
        ) as client:
            adapter = build_adapter(
                "smsbuddy", settings, client, load_catalog(settings.catalog_path)
            )
            assert isinstance(adapter, SMSBuddyAdapter)
            return await adapter.balance()

    table = Table("service", "balance", title="smsbuddy")
    for service, amount in asyncio.run(fetch()).items():
        table.add_row(service, str(amount))
    console.print(table)


@app.command()
def report(
    since: Annotated[
        str | None, typer.Option(help="From (ISO 8601, UTC if no offset; or 30m, 6h, 7d ago).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Until (same forms); default now.")] = None,
    provider: Annotated[str | None, typer.Option(help="Only this vendor.")] = None,
    campaign: Annotated[int | None, typer.Option(help="Only this campaign's messages.")] = None,
    out: Annotated[Path, typer.Option(help="Where to write the PNG chart.")] = Path(
        "smsdispatch-report.png"
    ),
) -> None:
    """Counts, delivery rate, time to delivery, cost per vendor and error codes of
    the messages submitted in a period (or of one campaign), and a PNG of sends and outcomes
    per minute."""
    from smsdispatch.analytics.chart import draw
    from smsdispatch.analytics.queries import ReportFilter, build_report
    from smsdispatch.analytics.tables import parse_moment, print_report
    from smsdispatch.store.db import Database

    settings = get_settings()
    db = Database(settings.database_url)
    now = db.clock()
    wanted = ReportFilter(parse_moment(since, now), parse_moment(until, now), provider, campaign)
    catalog = load_catalog(settings.catalog_path)
    with db.session() as session:
        result = build_report(session, wanted, routes=catalog.routes)
    print_report(result, console)
    vendors = list(catalog.providers)  # fixes each vendor's colour
    console.print(f"chart: {draw(result, out, vendors)}")


@app.command()
def metrics(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 9108,
) -> None:
    """Serve the cluster's Prometheus metrics alone (also at the API's /metrics)."""
    from smsdispatch.monitoring.web import serve_metrics
    from smsdispatch.routing.metrics import routing_collector

    settings = get_settings()
    console.print(f"metrics on http://{host}:{port}/metrics")
    serve_metrics(
        settings, host, port, [routing_collector(settings, load_catalog(settings.catalog_path))]
    )


@app.command()
def demo(
    messages: Annotated[int, typer.Option(help="How many sample messages.")] = 3000,
    flower: Annotated[bool, typer.Option(help="Also start Flower (basic auth).")] = True,
    keep: Annotated[bool, typer.Option(help="Leave the stack running until Ctrl-C.")] = False,
) -> None:
    """Run everything locally: private Redis, simulators, workers, beat, a sample."""
    from smsdispatch.cli.demo import run_demo

    run_demo(messages=messages, flower=flower, keep=keep, console=console)


if __name__ == "__main__":
    app()
