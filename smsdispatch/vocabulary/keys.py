"""Every Redis key smsdispatch writes (besides Celery's own), in one place."""

PREFIX = "smsdispatch"


def pause(provider: str) -> str:
    """A vendor's pause: value is the reason; the key's TTL is the pause."""
    return f"{PREFIX}:pause:{provider}"


# Exists (no expiry) while the limiter's state in Redis is intact; see limits/gcra.py.
LIMITER_STATE = f"{PREFIX}:rate:state"


def rate_account(provider: str) -> str:
    """The TAT of a vendor account's rate limit (GCRA)."""
    return f"{PREFIX}:rate:{provider}:account"


def rate_sender(provider: str, sender: str) -> str:
    """The TAT of one sender's rate limit (a long code: one message a second)."""
    return f"{PREFIX}:rate:{provider}:sender:{sender}"


def throttles(provider: str) -> str:
    """Consecutive throttle answers from a vendor: the pause grows with it."""
    return f"{PREFIX}:throttles:{provider}"


def undocumented(provider: str, code: str) -> str:
    """The messages (a set of ids) that got one undocumented code from a
    vendor within the catalog's window: enough of them pause the vendor."""
    return f"{PREFIX}:undocumented:{provider}:{code}"


# Counters the workers add to and the /metrics collector reads (see
# monitoring/counters.py): hash fields are "<provider>|<outcome>" and
# "<provider>|<bucket>", never anything personal.
METRICS_SENDS = f"{PREFIX}:metrics:sends"
METRICS_DEFERRALS = f"{PREFIX}:metrics:deferrals"
METRICS_LIMITER_WAITS = f"{PREFIX}:metrics:limiter_waits"
# "<from vendor>|<to vendor>" -> routed messages moved (sending/failover.py).
METRICS_FAILOVERS = f"{PREFIX}:metrics:failovers"
# "<vendor>" -> messages expired for want of a final report (reports/deadline.py).
METRICS_STALE = f"{PREFIX}:metrics:stale"


def rate_status_query(provider: str) -> str:
    """The TAT of the pace at which reconciliation queries a vendor's status API."""
    return f"{PREFIX}:rate:{provider}:status"


def rate_lost_search(provider: str) -> str:
    """The TAT of the pace at which reconciliation looks for lost sends in a vendor's list."""
    return f"{PREFIX}:rate:{provider}:search"


# Held by the one dispatcher run in progress (campaigns/dispatcher.py).
DISPATCH_LOCK = f"{PREFIX}:dispatch:lock"
# Held by the one sweep in progress (sending/sweeper.py).
SWEEP_LOCK = f"{PREFIX}:sweep:lock"


def periodic_turn(task: str) -> str:
    """Set (with a TTL) by the run of a periodic task that took the current turn."""
    return f"{PREFIX}:periodic:{task}"


# Vendor answers not yet in the database (sending/journal.py): fields are
# "<message id>:<attempts>", values an answer (outcome, code, vendor id).
JOURNAL = f"{PREFIX}:journal"
ORPHANED = f"{PREFIX}:orphaned"

# How stuck or orphaned sends were recovered (sending/sweeper.py):
# "<provider>|<how>" -> count.
METRICS_RECOVERIES = f"{PREFIX}:metrics:recoveries"

# The maintenance tasks' runs (monitoring/maintenance.py): "<task>|<outcome>"
# -> count, and "<task>" -> Redis TIME (seconds) of its last run that worked.
METRICS_MAINTENANCE_RUNS = f"{PREFIX}:metrics:maintenance_runs"
METRICS_MAINTENANCE_LAST_OK = f"{PREFIX}:metrics:maintenance_last_ok"


def health_prefix(provider: str) -> str:
    """A vendor's health counts: one hash per bucket of Redis time, the
    bucket's number appended (routing/health.py); fields are signals."""
    return f"{PREFIX}:health:{provider}:"


def delivery_prefix(provider: str) -> str:
    """A vendor's delivery figures from its final reports: one hash per bucket
    of Redis time, the bucket's number appended (routing/delivery.py); fields
    are the report's class and how long delivery took ("le60", "gt600")."""
    return f"{PREFIX}:delivery:{provider}:"


def breaker(provider: str) -> str:
    """A vendor's circuit breaker: state, since (Redis time), reason, probes_ok."""
    return f"{PREFIX}:breaker:{provider}"


def breaker_probe(provider: str) -> str:
    """Set (with a TTL) by the probe a half-open breaker let through."""
    return f"{PREFIX}:breaker:{provider}:probe"


def route_weights(route: str) -> str:
    """A route's current weights: vendor -> weight (absent: the resting weight)."""
    return f"{PREFIX}:routing:weights:{route}"


def route_weight_changed(route: str) -> str:
    """When each vendor's weight on a route last changed: vendor -> Redis time."""
    return f"{PREFIX}:routing:changed:{route}"


def route_pin(route: str, vendor: str) -> str:
    """An operator's pin of a vendor's weight on a route (0: drained); the TTL is
    how long it lasts; the value says the weight, why and who (routing/weights.py)."""
    return f"{PREFIX}:routing:pin:{route}:{vendor}"


# Every weight change, with its reason and Redis time (a trimmed stream).
ROUTE_CHANGES = f"{PREFIX}:routing:changes"


def callback_inflight(host: str) -> str:
    """Status callbacks being posted to this host now, across all workers: a
    sorted set of slot tokens scored by when each hold ends."""
    return f"{PREFIX}:callbacks:inflight:{host}"


def callback_rate(host: str) -> str:
    """The TAT of this host's callback rate (GCRA, callbacks/hosts.py)."""
    return f"{PREFIX}:callbacks:rate:{host}"


# Status callbacks posted, by outcome (delivered, retried, failed), and the
# time from status change to a 2xx: monitoring/counters.py.
METRICS_CALLBACKS = f"{PREFIX}:metrics:callbacks"
METRICS_CALLBACK_LATENCY = f"{PREFIX}:metrics:callback_latency"
