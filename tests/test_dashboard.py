"""The Grafana dashboard (deploy/grafana/dashboards) asks only for what /metrics exports.

The exported names come from a live scrape of the HTTP API, built with test
settings over a Redis and a database populated so that every family has
samples (so their labels are known too): no list of names typed by hand,
except the one below of the families other branches of issue 14 are adding.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery
from prometheus_client.parser import text_string_to_metric_families

from smsdispatch.config.catalog import load_catalog
from smsdispatch.config.settings import DEFAULT_CATALOG
from smsdispatch.monitoring.counters import MetricsBuffer, callback_bucket_of, field_name
from smsdispatch.monitoring.maintenance import OK, record_run
from smsdispatch.producer.api import Producer
from smsdispatch.producer.validation import SendRequest
from smsdispatch.routing.delivery import DeliveryBoard
from smsdispatch.routing.health import HealthBoard
from smsdispatch.store.db import Database
from smsdispatch.store.migrate import upgrade
from smsdispatch.store.reports import Final
from smsdispatch.vocabulary import keys
from smsdispatch.vocabulary.outcomes import OutcomeKind
from smsdispatch.vocabulary.status import MessageStatus
from smsdispatch.workers.app import create_app as create_celery
from tests.api_server import served_api
from tests.settings import make_settings
from tests.test_outbox import add_rows

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "smsdispatch.json"
METRICS_TOKEN = "test-metrics-token-0123456789"


ROWS = ["Sending", "Limits", "Queues", "Delivery SLOs", "Callbacks", "Routing", "Maintenance"]
VENDOR_LABELS = {"provider", "vendor"}


# -- what the API exports --------------------------------------------------------


def series_names(family: str, kind: str) -> list[str]:
    """The names a family's samples carry in the text format Prometheus scrapes."""
    if kind == "counter":
        return [f"{family}_total"]
    if kind == "histogram":
        return [f"{family}_bucket", f"{family}_sum", f"{family}_count"]
    return [family]


def populate(client: redis.Redis, database_url: str) -> None:
    """Something in every family: a send, a wait, a deferral, a failover, a
    recovery, a stale message, a maintenance run, enough final reports for the
    delivery shares, and stored messages (a new one with its Celery message in
    the backlog, and one sent ten minutes ago still awaiting its report)."""
    catalog = load_catalog(DEFAULT_CATALOG)
    counted = MetricsBuffer()
    counted.observe_wait("cue", 1.5)
    counted.count_sends([("cue", "accepted")])
    counted.count_deferrals([("cue", "rate_limit")])
    counted.count_failovers([("cue", "messangi")])
    counted.flush(client)
    client.hincrby(keys.METRICS_RECOVERIES, "cue|resend", 1)  # as the sweeper counts one
    client.hincrby(keys.METRICS_STALE, "cue", 1)  # as the report deadline counts one
    # A delivered callback, as the callback worker counts one (add_callback_metrics).
    client.hincrby(keys.METRICS_CALLBACKS, "delivered", 1)
    client.hincrby(keys.METRICS_CALLBACK_LATENCY, field_name("all", callback_bucket_of(0.2)), 1)
    client.hincrbyfloat(keys.METRICS_CALLBACK_LATENCY, field_name("all", "sum"), 0.2)
    HealthBoard(client, catalog.breaker).record("cue", [OutcomeKind.ACCEPTED], [0.2])
    record_run(client, "smsdispatch.sweep", OK)
    finals = [Final("cue", MessageStatus.DELIVERED, 30.0)] * catalog.delivery.min_reports
    DeliveryBoard(client, catalog.delivery).record(finals)
    settings = make_settings(database_url=database_url)
    celery: Celery = create_celery(settings)
    db = Database(database_url)
    try:
        result = Producer(settings, catalog, db, celery).send_batch(
            [SendRequest("+27825550000", "hello", "cue")]
        )
        assert not result.rejected
        # Sent ten minutes ago and not reported yet: a report is due (no-final share).
        ago = db.clock() - timedelta(minutes=10)
        add_rows(db, 1, at=ago, status="accepted", sent_at=ago, tracking_id="CUE1")
    finally:
        db.dispose()
        celery.close()


@pytest.fixture(scope="module")
def scraped(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """What the API's /metrics answers, every family populated."""
    database_url = f"sqlite:///{tmp_path_factory.mktemp('dashboard') / 'results.db'}"
    upgrade(database_url)
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    try:
        populate(client, database_url)
        with served_api(
            database_url=database_url, redis_url=redis_url, metrics_token=METRICS_TOKEN
        ) as http:
            # Presented the way Prometheus presents it (deploy/prometheus/prometheus.yml).
            answer = http.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    finally:
        client.flushdb()
        client.close()
    assert answer.status_code == 200
    return answer.text


@pytest.fixture(scope="module")
def exported(scraped: str) -> dict[str, set[str]]:
    """Every series name the API's /metrics exports, with its labels."""
    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(scraped):
        for name in series_names(family.name, family.type):
            names.setdefault(name, set())
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names


@pytest.fixture(scope="module")
def sampled(scraped: str) -> set[str]:
    """The series names the scrape holds a sample of."""
    return {s.name for f in text_string_to_metric_families(scraped) for s in f.samples}


# -- reading PromQL ------------------------------------------------------------------

STRING = r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`'
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
SELECTOR = re.compile(rf"({NAME})?\s*\{{((?:{STRING}|[^}}\"'`])*)\}}")
MATCHER = re.compile(rf"({NAME})\s*(?:=~|!~|!=|=)\s*({STRING})")
GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
# Grafana's template functions: label_values(<series>, label), query_result(<query>).
LABEL_VALUES = re.compile(rf"\blabel_values\(\s*(.*?)\s*,\s*{NAME}\s*\)\s*$")
KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"}


class Query:
    """The metric names, matcher labels and `by` labels of one PromQL expression."""

    def __init__(self, expr: str) -> None:
        self.expr = expr
        text = LABEL_VALUES.sub(r"\1", expr.strip())
        text = re.sub(r"\bquery_result\((.*)\)\s*$", r"\1", text)
        self.matched: dict[str, set[str]] = {}

        def selector(found: re.Match[str]) -> str:
            labels = {m.group(1) for m in MATCHER.finditer(found.group(2))}
            name = found.group(1)
            if name is None:  # {__name__="..."}: only a plain name can be checked
                (name,) = [
                    m.group(2)[1:-1]
                    for m in MATCHER.finditer(found.group(2))
                    if m.group(1) == "__name__"
                ]
            self.matched.setdefault(name, set()).update(labels - {"__name__"})
            return f" {name} "

        text = SELECTOR.sub(selector, text)
        text = re.sub(STRING, " ", text)
        text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
        text = re.sub(r"\boffset\s+\S+", " ", text)
        self.grouped: set[str] = set()
        for found in GROUPING.finditer(text):
            if found.group(1) in {"by", "without"}:
                self.grouped.update(n.strip() for n in found.group(2).split(",") if n.strip())
        text = GROUPING.sub(" ", text)
        text = re.sub(r"\$\{?\w+\}?", " ", text)  # Grafana variables
        text = re.sub(r"(?<![\w.])\d+(?:\.\d+)?(?:[eE][+-]?\d+)?", " ", text)
        # A name followed by "(" is a function or an aggregation.
        words = re.finditer(rf"(?<![\w:]){NAME}(?![\w:])(?!\s*\()", text)
        self.names = {m.group(0) for m in words} - KEYWORDS


def test_a_query_is_read_past_functions_matchers_groupings_numbers_and_variables() -> None:
    query = Query(
        'histogram_quantile(0.99, sum by (le, provider) (rate(a_bucket{provider=~"$vendor", '
        'le="1.0"}[$__rate_interval]))) / on (provider) 2 * sum without (x) (b_total offset 5m)'
        ' > bool 1e3 + sum(increase(c{d="}"}[1h:5m]))'
    )
    assert query.names == {"a_bucket", "b_total", "c"}
    assert query.matched == {"a_bucket": {"provider", "le"}, "c": {"d"}}
    assert query.grouped == {"le", "provider", "x"}


def test_a_template_query_names_the_series_of_its_label_values() -> None:
    query = Query("label_values(smsdispatch_messages{status='queued'}, provider)")
    assert query.names == {"smsdispatch_messages"}


# -- the dashboard ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def panels_of(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, rows included (a collapsed row holds its panels itself)."""
    found: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def plotted(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in panels_of(dashboard) if p["type"] != "row"]


def variable(dashboard: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [v for v in dashboard["templating"]["list"] if v["name"] == name]
    return dict(found)


def queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, Query]]:
    """(where, query) for every panel target and every query variable."""
    for panel in plotted(dashboard):
        for target in panel["targets"]:
            yield f"{panel['title']} {target['refId']}", Query(target["expr"])
    for each in dashboard["templating"]["list"]:
        if each["type"] == "query":
            text = each["query"]["query"] if isinstance(each["query"], dict) else each["query"]
            yield f"${each['name']}", Query(text)


def test_every_query_names_only_metrics_the_api_exports(
    dashboard: dict[str, Any], exported: dict[str, set[str]]
) -> None:
    known = set(exported)
    unknown = {
        where: sorted(query.names - known)
        for where, query in queries(dashboard)
        if query.names - known
    }
    assert unknown == {}
    assert all(query.names for _, query in queries(dashboard))


def test_every_label_a_query_matches_or_groups_by_is_one_its_metrics_carry(
    dashboard: dict[str, Any], exported: dict[str, set[str]], sampled: set[str]
) -> None:
    wrong = {}
    for where, query in queries(dashboard):
        for name in query.names & set(exported):
            # Populated: every family has samples, so its labels are known.
            assert name in sampled, f"{name} has no samples in the scrape: populate it"
            missing = (query.matched.get(name, set()) | query.grouped) - exported[name]
            if missing:
                wrong[f"{where} {name}"] = sorted(missing)
    assert wrong == {}


def test_every_per_vendor_query_follows_the_vendor_variable(
    dashboard: dict[str, Any], exported: dict[str, set[str]]
) -> None:
    ignoring = {}
    for where, query in queries(dashboard):
        for name in query.names & set(exported):
            label = exported[name] & VENDOR_LABELS
            if where != "$vendor" and label and not label <= query.matched.get(name, set()):
                ignoring[where] = name
    assert ignoring == {}


def test_the_dashboard_has_a_uid_a_title_a_schema_version_and_its_rows(
    dashboard: dict[str, Any],
) -> None:
    assert dashboard["uid"] == "smsdispatch"
    assert dashboard["title"]
    assert isinstance(dashboard["schemaVersion"], int)
    assert [p["title"] for p in dashboard["panels"] if p["type"] == "row"] == ROWS


def test_every_panel_has_a_title_and_a_place_on_the_grid(dashboard: dict[str, Any]) -> None:
    for panel in panels_of(dashboard):
        assert panel["title"], panel
        grid = panel["gridPos"]
        assert all(isinstance(grid[k], int) and grid[k] >= 0 for k in ("h", "w", "x", "y")), panel
        assert grid["h"] > 0, panel["title"]
        assert grid["w"] > 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]


def test_no_two_panels_overlap(dashboard: dict[str, Any]) -> None:
    def cells(panel: dict[str, Any]) -> set[tuple[int, int]]:
        g = panel["gridPos"]
        return {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }

    overlapping = [
        (a["title"], b["title"])
        for a, b in combinations(panels_of(dashboard), 2)
        if cells(a) & cells(b)
    ]
    assert overlapping == []


def test_every_panel_reads_the_datasource_variable(dashboard: dict[str, Any]) -> None:
    assert variable(dashboard, "datasource")["type"] == "datasource"
    assert variable(dashboard, "datasource")["query"] == "prometheus"
    for panel in plotted(dashboard):
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]


def test_the_vendor_variable_offers_every_vendor_and_all(dashboard: dict[str, Any]) -> None:
    vendor = variable(dashboard, "vendor")
    assert vendor["type"] == "query"
    assert vendor["datasource"]["uid"] == "${datasource}"
    assert vendor["multi"]
    assert vendor["includeAll"]
    assert vendor["allValue"] == ".*"


def test_every_panel_says_the_unit_of_what_it_plots(dashboard: dict[str, Any]) -> None:
    assert [
        p["title"] for p in plotted(dashboard) if not p["fieldConfig"]["defaults"].get("unit")
    ] == []


def test_a_per_vendor_series_is_named_after_its_vendor_in_the_legend(
    dashboard: dict[str, Any],
) -> None:
    for panel in plotted(dashboard):
        for target in panel["targets"]:
            for label in Query(target["expr"]).grouped & VENDOR_LABELS:
                assert f"{{{{{label}}}}}" in target["legendFormat"], panel["title"]


def test_quantiles_come_from_histogram_buckets(dashboard: dict[str, Any]) -> None:
    for panel in plotted(dashboard):
        for target in panel["targets"]:
            if "histogram_quantile" in target["expr"]:
                assert "_bucket" in target["expr"], panel["title"]
                assert "le" in Query(target["expr"]).grouped, panel["title"]
