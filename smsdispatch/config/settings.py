"""Settings from the environment (and an optional `.env` file).

Everything that differs between the demo, the tests and production lives here:
where Redis and the database are, and each vendor's base URL and credentials.
Base URLs are settings so the same adapters talk to the real vendors or to the
local simulators. Credentials are `SecretStr` so they never show in a repr, a
log line or a traceback.

Vendor settings are nested: `CUE__BASE_URL`, `CUE__USERNAME`, ...
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_CATALOG = Path(__file__).with_name("providers.toml")
DATABASE_FILE = "smsdispatch.db"


def data_directory() -> Path:
    """Where smsdispatch keeps its own files when no setting names a place.

    The XDG data directory (`$XDG_DATA_HOME`, by default `~/.local/share`),
    then `smsdispatch/`: the same for every command whatever directory it runs
    in, so `status` run elsewhere reads the database `db upgrade` made rather
    than creating an empty one where it stands. A relative `XDG_DATA_HOME` is
    ignored, as the XDG specification says.
    """
    configured = os.environ.get("XDG_DATA_HOME", "")
    base = Path(configured) if os.path.isabs(configured) else Path.home() / ".local" / "share"
    return base / "smsdispatch"


def default_database_url() -> str:
    """A SQLite file in `data_directory()` (`smsdispatch db upgrade` creates it)."""
    return f"sqlite:///{data_directory() / DATABASE_FILE}"


class VendorSettings(BaseModel):
    """What every vendor's settings have.

    `REQUIRED` names the fields a vendor cannot send without. A base URL with
    no default (Skycore's document names none) is required like a credential.
    """

    REQUIRED: ClassVar[tuple[str, ...]] = ("base_url",)

    base_url: str = ""
    default_sender: str = ""

    def missing(self, vendor: str, fields: Iterable[str] | None = None) -> list[str]:
        """The environment names (`SKYCORE__BASE_URL`) of required settings left empty."""
        return [
            env_name(vendor, name)
            for name in (self.REQUIRED if fields is None else fields)
            if not _is_set(getattr(self, name))
        ]


def env_name(vendor: str, field: str) -> str:
    """The environment variable of a vendor setting: `cue`, `base_url` -> `CUE__BASE_URL`."""
    return f"{vendor.upper()}__{field.upper()}"


def _is_set(value: object) -> bool:
    if isinstance(value, SecretStr):
        return bool(value.get_secret_value())
    return bool(value)


class CueSettings(VendorSettings):
    REQUIRED = ("base_url", "username", "password")

    base_url: str = "https://cuetechnologies.sms-console.com"
    username: SecretStr = SecretStr("")
    password: SecretStr = SecretStr("")
    default_sender: str = "CUESMS"


class MessangiSettings(VendorSettings):
    REQUIRED = ("base_url", "api_key")

    # The document names the host and the paths `raven/v2/messages` and
    # `v3/messages/batch`; we read both as relative to `<host>/raven`.
    base_url: str = "https://elastic.messangi.me/raven"
    api_key: SecretStr = SecretStr("")
    default_sender: str = "12345"
    # The document gives the batch path, `v3/messages/batch`, relative to
    # nothing. Empty: `{base_url}/v3/messages/batch`, our reading; set it to
    # the whole URL if the account's is elsewhere (`<host>/v3/messages/batch`).
    batch_url: str = ""

    def batch_endpoint(self) -> str:
        return self.batch_url or f"{self.base_url.rstrip('/')}/v3/messages/batch"


class SMSBuddySettings(VendorSettings):
    REQUIRED = ("base_url", "key")

    base_url: str = "https://thesmsbuddy.com/api/v1"
    key: SecretStr = SecretStr("")
    default_sender: str = "SMSBDY"
    # 1 transactional, 2 promotional, 3 transscrub (the document's `type`).
    service_type: str = "1"
    template_id: str = ""
    # The document gives the balance check outside its own base URL:
    # `https://thesmsbuddy.com/api/sms/balance/check`, no `v1`. Empty: that
    # path next to the base URL (its trailing `/v1` dropped).
    balance_url: str = ""

    def balance_endpoint(self) -> str:
        if self.balance_url:
            return self.balance_url
        root = self.base_url.rstrip("/").removesuffix("/v1")
        return f"{root}/sms/balance/check"


class RestcommSettings(VendorSettings):
    REQUIRED = ("base_url", "account_sid", "auth_token")

    base_url: str = "https://mycompany.restcomm.com/restcomm/2012-04-24"
    account_sid: SecretStr = SecretStr("")
    auth_token: SecretStr = SecretStr("")
    # A short code: a long code (the document's example 19876543212) sends 1/s.
    default_sender: str = "55555"


class SkycoreSettings(VendorSettings):
    REQUIRED = ("base_url", "api_key")

    # The document only says API_ENDPOINT_URL, the whole URL, and names no
    # host: Skycore gives it with the account, so there is no default and a
    # process without it refuses Skycore messages (see `Settings.unconfigured`).
    base_url: str = ""
    api_key: SecretStr = SecretStr("")
    default_sender: str = "00000"


VENDORS = ("cue", "messangi", "smsbuddy", "restcomm", "skycore")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_nested_delimiter="__",
        extra="ignore",
    )

    redis_url: str = "redis://127.0.0.1:6379/0"
    # Default: a SQLite file in the data directory (`default_database_url`);
    # `smsdispatch status` prints which database it reads.
    database_url: str = Field(default_factory=default_database_url)
    catalog_path: Path = DEFAULT_CATALOG

    # Outbox and sweeper: how long a row may sit in `queued` after it was put
    # on the broker, or in `sending` after a worker claimed it, before the
    # sweeper assumes the Celery message or the worker was lost.
    requeue_after_seconds: float = 300.0
    sending_deadline_seconds: float = 120.0
    sweep_interval_seconds: float = 1.0
    # A send that may or may not have left (read timeout, no reference the
    # vendor deduplicates) waits this long for a delivery report or a status
    # query to settle it; then it is failed as "unconfirmed".
    unknown_deadline_seconds: float = 86400.0
    sweep_batch_limit: int = 5000
    # A worker that cannot reach the database tries again with back-off for
    # this long: to claim (then the task comes back a few seconds later), or
    # to record vendor answers (then it hands them to the sweeper through
    # Redis, which writes them when the database is back: sending/journal.py).
    database_retry_seconds: float = 10.0

    # The global rate limiter: the longest a worker waits in-process for a
    # slot (longer waits go through the database; it also bounds how far
    # bulk messages book the vendor ahead of an urgent one), and how unevenly
    # our messages may reach the vendor after their slots (every limit leaves
    # room for it, so the vendor's clock never sees too many; a worker that
    # wakes more than half of it late takes a fresh slot: limits/gate.py).
    limiter_max_wait_seconds: float = 2.0
    limiter_jitter_seconds: float = Field(0.05, gt=0)

    # HTTP to the vendors.
    http_connect_timeout_seconds: float = 5.0
    http_read_timeout_seconds: float = 30.0
    http_max_connections: int = 200
    # A connection idle this long is closed rather than reused: keep it under
    # the shortest idle timeout of any vendor's server (5 s is common), or a
    # request can meet the server's close and end `unknown`
    # (providers/transport.py).
    http_keepalive_seconds: float = 2.0
    # The most one vendor request may take, start to end; keep it well under
    # sending_deadline_seconds so a slow answer never gets a row resent.
    http_total_timeout_seconds: float = 60.0

    # Campaigns: how often beat runs the dispatcher, how many seconds of the
    # vendor's rate it keeps released (on the broker or waiting for a worker;
    # this bounds Redis whatever the campaign's size, and is what a pause has
    # to take back), and how often it refreshes a campaign's stored counters.
    dispatch_interval_seconds: float = 1.0
    campaign_backlog_seconds: float = 10.0
    campaign_counts_interval_seconds: float = 5.0
    # Delivery reports keep coming after a campaign has sent everything: its
    # counters follow them for this long after it finishes.
    campaign_counts_after_seconds: float = 86400.0

    # Where vendors post delivery reports (the webhooks of the HTTP API):
    # {public_base_url}/reports/<vendor>/<token>, each vendor's token derived
    # from REPORT_SECRET (reports/urls.py). Without both, no reports are
    # asked for and the webhooks refuse everything.
    public_base_url: str = ""
    report_secret: SecretStr = SecretStr("")
    # Each API process applies the reports it takes in batches, in one
    # transaction, and answers each request once its batch has committed: a
    # batch is written when it holds `report_batch_size` reports, or
    # `report_batch_wait_seconds` after its first one came.
    report_batch_size: int = 500
    report_batch_wait_seconds: float = 0.005
    # A report naming a message whose send is not recorded yet is kept and
    # applied by the transaction that records it; reconciliation also
    # re-applies kept reports for this long (a send recorded another way).
    report_unmatched_retry_seconds: float = 3600.0
    # Reconciliation (beat): messages `accepted` this long without a final
    # report, and `unknown` ones, are polled where the vendor has a status
    # query; at most `reconcile_batch` per run and `reconcile_rate_per_second`
    # queries per vendor across all workers.
    reconcile_after_seconds: float = 900.0
    reconcile_interval_seconds: float = 10.0
    reconcile_batch: int = 500
    reconcile_rate_per_second: float = 5.0
    # Routing (beat): how often routes' weights are moved by vendor health
    # (routing/weights.py; the steps and cooldowns are the catalog's `weights`).
    rebalance_interval_seconds: float = 10.0
    # A send whose answer was lost (a read timeout, a worker killed before it
    # recorded it) is looked for where the vendor lists what it took, once the
    # vendor has had this long to list it; not found, it is sent again. The
    # search window is widened by the tolerance: the vendor's clock is not ours.
    lost_send_search_after_seconds: float = 10.0
    # Searches per second per vendor: a dead worker leaves a whole batch to
    # look for, and each waits unsent until it is looked for.
    lost_send_search_rate: float = 20.0
    vendor_clock_tolerance_seconds: float = 30.0

    # The HTTP API: the keys other applications present (X-API-Key; with
    # none configured every request is refused), and request size limits.
    api_keys: list[SecretStr] = []
    api_max_body_bytes: int = 5_000_000
    api_max_batch: int = 10_000
    # Database connections the API keeps open (PostgreSQL); up to as many
    # again open for bursts, and closed after use.
    api_db_pool_size: int = 10
    # A campaign's recipient list (CSV) may be larger: a million rows is about 30 MB.
    api_max_upload_bytes: int = 200_000_000
    # One line per request (method, path with the report token replaced,
    # status, duration: api/access_log.py); false turns it off.
    api_access_log: bool = True

    # GET /metrics (Prometheus): open when empty, else `Authorization: Bearer
    # <token>`; how long the per-status message counts are reused between
    # scrapes (that query reads the whole messages table).
    metrics_token: SecretStr = SecretStr("")
    metrics_db_cache_seconds: float = 15.0

    # Status callbacks to client applications (smsdispatch/callbacks/):
    # the secret that signs callbacks of messages from the producer API and
    # of API_KEYS keys (keys made by `smsdispatch keys create` have their own);
    # whether URLs to private, loopback or link-local addresses are allowed
    # (refused by default: a callback URL must not reach our own network).
    callback_secret: SecretStr = SecretStr("")
    callback_allow_private: bool = False
    # How long a callback is retried (connection errors, timeouts, 5xx, 429)
    # before it is kept as failed; back-off doubles from the first delay up
    # to the longest, with jitter, and Retry-After is honoured.
    callback_retry_period_seconds: float = 86400.0
    callback_retry_first_seconds: float = 1.0
    callback_retry_max_seconds: float = 600.0
    # Each POST: connect and whole-request timeouts, and the most of the
    # answer read (the body is only logged).
    callback_connect_timeout_seconds: float = 2.0
    callback_timeout_seconds: float = 5.0
    callback_max_response_bytes: int = 4096
    # Per receiving host, across all workers (Redis): at most this many POSTs
    # in flight and this many per second; the rest wait a moment in the
    # database, so one slow endpoint never holds up another's callbacks.
    callback_host_concurrency: int = 8
    callback_host_rate_per_second: float = 50.0
    # Beat's sweep of due callbacks, how many it hands out per run, and how
    # many ids go in one Celery task.
    callback_interval_seconds: float = 0.5
    callback_batch_limit: int = 2000
    callback_task_size: int = 50

    # Logging: message texts and numbers are never logged above DEBUG; this
    # keeps them out of DEBUG too.
    log_personal_data: bool = False

    cue: CueSettings = CueSettings()
    messangi: MessangiSettings = MessangiSettings()
    smsbuddy: SMSBuddySettings = SMSBuddySettings()
    restcomm: RestcommSettings = RestcommSettings()
    skycore: SkycoreSettings = SkycoreSettings()

    @model_validator(mode="after")
    def _deadlines(self) -> Settings:
        return _check_deadlines(self)

    def vendor(self, name: str) -> VendorSettings:
        settings: VendorSettings = getattr(self, name)
        return settings

    def unconfigured(
        self, vendors: Iterable[str], fields: Iterable[str] | None = None
    ) -> dict[str, list[str]]:
        """Each of `vendors` that lacks a required setting (of `fields`, if
        given) -> the settings' environment names."""
        only = tuple(fields) if fields is not None else None
        found = {name: self.vendor(name).missing(name, only) for name in vendors if name in VENDORS}
        return {name: missing for name, missing in found.items() if missing}


def warn_unconfigured(
    settings: Settings,
    vendors: Iterable[str],
    log: logging.Logger,
    fields: Iterable[str] | None = None,
) -> None:
    """Say at start-up, one line per vendor, which vendor of the catalog cannot send."""
    for vendor, missing in settings.unconfigured(vendors, fields).items():
        consequence = (
            "new messages for it are refused, and workers hold any they claim"
            if env_name(vendor, "base_url") in missing
            else "workers hold its messages, pausing the vendor, until that is fixed"
        )
        log.warning(
            "%s is in the provider catalog but %s %s not set: %s",
            vendor,
            ", ".join(missing),
            "is" if len(missing) == 1 else "are",
            consequence,
        )


def _check_deadlines(settings: Settings) -> Settings:
    """A request still in flight must never be taken for a dead worker's."""
    if settings.http_total_timeout_seconds >= settings.sending_deadline_seconds:
        raise ValueError(
            f"HTTP_TOTAL_TIMEOUT_SECONDS ({settings.http_total_timeout_seconds:g}) must be "
            f"less than SENDING_DEADLINE_SECONDS ({settings.sending_deadline_seconds:g}): "
            "otherwise a slow answer gets its message reclaimed and sent again"
        )
    return settings


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
