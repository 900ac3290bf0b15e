"""Alerts and dashboards watch series that exist: what the production exporter writes.

The real ``opentelemetry-exporter-gcp-monitoring`` exporter runs inside each deployed
component (ingest, etl with its freshness probe, cdc_flush) against an in-process stand-in of
the Monitoring API; every metric and label the Terraform alert policies and dashboards read must
be among the recorded series, in Cloud Monitoring's naming.

Expected naming, from the exporter's documentation and source (opentelemetry-operations-python,
``opentelemetry-exporter-gcp-monitoring``): metric type ``workload.googleapis.com/<name>``
(README, "prefix" default); Sum monotonic -> CUMULATIVE, Gauge -> GAUGE, Histogram ->
CUMULATIVE DISTRIBUTION (``_get_metric_descriptor``); resource ``generic_task`` with labels
location, namespace, job, task_id when service.name and service.instance.id are set
(``resourcedetector/gcp_resource_detector/_mapping.py``). Cloud Monitoring PromQL reads
``workload.googleapis.com/x`` as ``workload_googleapis_com:x``; distributions as
``x_bucket``/``x_count``/``x_sum`` (https://cloud.google.com/monitoring/promql/promql-mapping).
Metrics the GKE collector exposes are scraped by Managed Service for Prometheus and keep their
Prometheus names, with the target labels project_id, location, cluster, namespace, job,
instance (https://cloud.google.com/stackdriver/docs/managed-prometheus/setup-managed).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from edp.observability.catalogue import METRICS, WORKLOAD_PREFIX, MetricSpec, metric
from edp_tools.local.pubsub_emulator import PubSubEmulator

from .gcmfake import Recorded
from .queries import Query, Selector, dashboard_filters, dashboard_queries, terraform_queries
from .recording import record_deployed_components

GENERIC_TASK_LABELS = {"location", "namespace", "job", "task_id"}
PROMQL_RESOURCE_LABELS = GENERIC_TASK_LABELS | {"project_id", "monitored_resource"}
GMP_TARGET_LABELS = {"project_id", "location", "cluster", "namespace", "job", "instance"}
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")
# Google Cloud system metrics the policies may read besides ours (PromQL spelling).
SYSTEM_PREFIXES = {
    "run_googleapis_com",
    "pubsub_googleapis_com",
    "bigquery_googleapis_com",
    "kubernetes_io",
    "workflows_googleapis_com",
    "cloudscheduler_googleapis_com",
}
EXPECTED_KIND = {
    "counter": ("CUMULATIVE", {"INT64", "DOUBLE"}),
    "observable_counter": ("CUMULATIVE", {"INT64", "DOUBLE"}),
    "histogram": ("CUMULATIVE", {"DISTRIBUTION"}),
    "gauge": ("GAUGE", {"INT64", "DOUBLE"}),
    "observable_gauge": ("GAUGE", {"INT64", "DOUBLE"}),
}
RECORDED_OWNERS = {"ingest", "etl", "cdc_flush", "quality agent"}
QUERIES = terraform_queries() + dashboard_queries()


@pytest.fixture(scope="module")
def recorded(
    pubsub_emulator: PubSubEmulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Recorded]:
    with pytest.MonkeyPatch.context() as mp:
        yield record_deployed_components(
            mp, tmp_path_factory.mktemp("parity"), pubsub_emulator.project, pubsub_emulator.host
        )


def _type(name: str) -> str:
    return f"{WORKLOAD_PREFIX}/{name}"


def test_the_stand_in_refused_nothing(recorded: Recorded) -> None:
    assert recorded.series, "nothing was exported"
    assert recorded.errors == []


def test_every_series_is_a_workload_metric_on_its_own_generic_task(recorded: Recorded) -> None:
    for series in recorded.series:
        assert series.metric_type.startswith(WORKLOAD_PREFIX + "/"), series
        assert series.resource_type == "generic_task", series
        assert set(series.resource_labels) == GENERIC_TASK_LABELS, series
        assert series.resource_labels["namespace"] == "edp"
        assert series.resource_labels["task_id"], "writers must not share a series"


@pytest.mark.parametrize(
    "spec", [s for s in METRICS if s.owner in RECORDED_OWNERS], ids=lambda s: s.name
)
def test_each_deployed_metric_is_written_as_declared(recorded: Recorded, spec: MetricSpec) -> None:
    written = recorded.of(_type(spec.name))
    assert written, f"{spec.owner} never wrote {spec.name}"
    kind, value_types = EXPECTED_KIND[spec.kind]
    for series in written:
        assert series.metric_kind == kind
        assert series.value_type in value_types
        assert set(series.metric_labels) == set(spec.labels), series.metric_labels


def _base(name: str) -> tuple[str, str]:
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)], suffix
    return name, ""


def _declared(name: str) -> MetricSpec | None:
    try:
        return metric(name)
    except KeyError:
        return None


def _labels_of(recorded: Recorded, selector: Selector) -> set[str]:
    """Labels a selector may match or group on; fails if it reads nothing that is written."""
    prefix, _, name = selector.name.rpartition(":")
    if prefix and prefix != WORKLOAD_PREFIX.replace(".", "_"):
        assert prefix in SYSTEM_PREFIXES, f"{selector.name}: unknown metric domain"
        return set()  # a Google Cloud system metric: not ours to check
    base, suffix = _base(name)
    spec = _declared(base) or _declared(name)
    assert spec is not None, f"{selector.name} is not in edp.observability.catalogue"
    if spec is not _declared(base):
        base, suffix = name, ""
    assert spec.is_histogram == bool(suffix), (
        f"{selector.name}: histograms are read as _bucket/_count/_sum, other kinds by name"
    )
    assert spec.owner in RECORDED_OWNERS, f"{selector.name}: {spec.owner} is not deployed"
    le = {"le"} if suffix == "_bucket" else set()
    if not prefix:  # the collector's /metrics through Managed Service for Prometheus
        assert spec.owner == "ingest", f"{selector.name}: only the collector is scraped"
        return set(spec.labels) | GMP_TARGET_LABELS | le
    written = recorded.of(_type(base))
    assert written, f"{selector.name}: no deployed component wrote {base}"
    labels = set().union(*(set(s.metric_labels) for s in written))
    return labels | PROMQL_RESOURCE_LABELS | le


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.source)
def test_queries_read_written_series_and_labels(recorded: Recorded, query: Query) -> None:
    selectors = query.selectors()
    assert selectors, f"no metric read by {query.text}"
    checks = [(set(s.matchers), s) for s in selectors]
    for labels, expression in query.groupings():
        checks += [(set(labels), s) for s in Query(query.source, expression).selectors()]
    for wanted, selector in checks:
        available = _labels_of(recorded, selector)
        if available:
            missing = wanted - available
            assert not missing, f"{selector.name} has no label {sorted(missing)}"


def test_dashboards_filters_name_written_metrics(recorded: Recorded) -> None:
    for where, value in dashboard_filters():
        for name in (v for v in value.split('"') if v.startswith(WORKLOAD_PREFIX + "/")):
            assert recorded.of(name), f"{where}: {name} is never written"


def test_the_freshness_alert_reads_the_deployed_gauge() -> None:
    (freshness,) = [q for q in terraform_queries() if "data_freshness_minutes" in q.text]
    assert "workload_googleapis_com:data_freshness_minutes" in freshness.text
    assert metric("data_freshness_minutes").kind == "gauge"
