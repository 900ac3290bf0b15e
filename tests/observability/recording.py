"""Run each deployed component's code path with the real Cloud Monitoring exporter pointed at
the in-process stand-in, and keep what was written.

The components run as they do in GCP: functions-framework serves the entry points of
``functions/main.py`` with ``EDP_METRICS_EXPORTER=cloud_monitoring`` (what Terraform sets), on
the real Pub/Sub emulator and a DuckDB warehouse. Each run ends with the export the function
does before answering (``flush_metrics``) or, for ingest, the periodic reader's export.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from functions_framework import create_app

from edp.bus.clients import build_publisher, build_subscriber
from edp.bus.messages import Message, publish_all
from edp.cdc.flush import CdcFlusher
from edp.cdc.topology import ensure_cdc_topology
from edp.observability import metrics as otel
from edp.settings import get_settings
from edp.warehouse import get_warehouse

from .gcmfake import FakeMetricService, Recorded

ROOT = Path(__file__).resolve().parents[2]
MAIN = str(ROOT / "functions" / "main.py")
WRITE_KEY = "parity-write-key"


def _clear_component_caches() -> None:
    """Instrument caches of the components (they hold instruments of the old provider)."""
    from edp.cdc import app as cdc_app
    from edp.etl import app as etl_app
    from edp.etl import freshness, runner
    from edp.ingest import asgi as ingest_asgi
    from edp.ingest import metrics as ingest_metrics

    get_settings.cache_clear()
    ingest_metrics.reset_ingest_metrics()
    ingest_asgi.cached_app.cache_clear()
    runner._metrics.cache_clear()
    freshness._gauge.cache_clear()
    etl_app.default_app.cache_clear()
    cdc_app._run_instruments.cache_clear()


@contextmanager
def prometheus_metrics(mp: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's metrics on a fresh Prometheus reader, as under ``edp dev``, whatever an
    earlier test in this process left built (instruments of a provider since shut down)."""
    mp.setenv("EDP_METRICS_EXPORTER", "prometheus")
    mp.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    otel.reset_for_tests()
    _clear_component_caches()
    try:
        yield
    finally:
        otel.reset_for_tests()
        _clear_component_caches()


@contextmanager
def cloud_monitoring(mp: pytest.MonkeyPatch) -> Iterator[FakeMetricService]:
    """The stand-in, with the process's metrics going to it through the real exporter."""
    with FakeMetricService() as fake:
        mp.setenv("EDP_METRICS_EXPORTER", "cloud_monitoring")
        mp.setenv("EDP_METRICS_API_ENDPOINT", fake.endpoint)
        mp.setenv("EDP_METRICS_EXPORT_INTERVAL_SEC", "3600")  # only the explicit exports
        otel.reset_for_tests()
        _clear_component_caches()
        try:
            yield fake
        finally:
            otel.reset_for_tests()
            _clear_component_caches()


def _create_topics(project: str, host: str, pairs: list[tuple[str, str]]) -> None:
    publisher = build_publisher(emulator_host=host)
    subscriber = build_subscriber(emulator_host=host)
    for topic, sub in pairs:
        publisher.create_topic(name=f"projects/{project}/topics/{topic}")
        subscriber.create_subscription(
            request={
                "name": f"projects/{project}/subscriptions/{sub}",
                "topic": f"projects/{project}/topics/{topic}",
            }
        )


def run_ingest(mp: pytest.MonkeyPatch, project: str, emulator_host: str) -> None:
    suffix = uuid.uuid4().hex[:8]
    events, bad = f"events-{suffix}", f"events-bad-{suffix}"
    _create_topics(project, emulator_host, [(events, f"s-{events}"), (bad, f"s-{bad}")])
    mp.setenv("EDP_TOPIC_EVENTS", events)
    mp.setenv("EDP_TOPIC_BAD_EVENTS", bad)
    mp.setenv("EDP_WRITE_KEYS", WRITE_KEY)
    get_settings.cache_clear()
    from starlette.testclient import TestClient

    ingest = create_app(target="ingest", source=MAIN)  # an async function: a Starlette app
    good = {
        "event_type": "page_view",
        "anonymous_id": "anon-1",
        "client_timestamp": "2026-11-26T10:00:00.000Z",
        "page_location": "https://shop.example/",
    }
    body = json.dumps([good, {"bad": 1}]).encode()
    with TestClient(ingest) as client:
        response = client.post("/v1/events", content=body, headers={"X-Write-Key": WRITE_KEY})
        assert response.status_code < 300, response.text
        stranger = client.post("/v1/events", content=body, headers={"X-Write-Key": "not-a-key"})
        assert stranger.status_code == 401  # counted, never stored
    otel.flush_metrics(force=True)  # what the periodic reader does every interval


def run_etl() -> None:
    client = create_app(target="etl", source=MAIN).test_client()
    ok = client.post("/run", json={"date": "2026-11-21", "model": "mart.orders_daily"})
    assert ok.status_code == 200, ok.get_data(as_text=True)
    failed = client.post(
        "/record-failure", json={"date": "2026-11-21", "model": "mart.orders_daily", "error": "x"}
    )
    assert failed.status_code == 200, failed.get_data(as_text=True)
    fresh = client.post("/freshness")
    assert fresh.status_code == 200, fresh.get_data(as_text=True)
    otel.flush_metrics(force=True)  # the handler's own flush may fall within 5.5 s of the last


def run_quality() -> None:
    """A quality_check run, then the agent's incident path: a Gemini report through the real
    client against a Vertex endpoint that refuses the connection (counted as an error, the
    offline analyst writes it) and a Slack post to a webhook nobody answers (counted)."""
    import datetime as dt

    from google.oauth2.credentials import Credentials

    from edp.alerting.slack import SlackMessage, SlackNotifier
    from edp.errors import TransientError
    from edp.quality.gemini import write_report
    from edp.quality.report import CheckEvidence, Evidence
    from edp.warehouse import get_warehouse as open_warehouse
    from edp_tools.local.processes import free_port

    # a few events in the checked window, one without an anonymous_id: null-rate has a value
    at = dt.datetime(2026, 11, 21, 11, 30, tzinfo=dt.UTC)
    rows = [
        {
            "event_id": str(uuid.uuid4()),
            "event_type": "page_view",
            "event_timestamp": at,
            "received_at": at,
            "ingested_at": at,
            "user_id": None,
            "anonymous_id": None if n == 0 else f"a{n}",
            "session_id": f"s{n}",
            "device_type": "mobile",
            "platform": "web",
            "schema_version": "1",
        }
        for n in range(5)
    ]
    wh = open_warehouse(get_settings())
    try:
        wh.insert_rows("raw.user_events", rows)
    finally:
        wh.close()
    client = create_app(target="quality_check", source=MAIN).test_client()
    response = client.post("/", json={"now": "2026-11-21T12:00:00+00:00"})
    assert response.status_code == 200, response.get_data(as_text=True)
    # A volume z-score exists only after weeks of same-hour history (the run above has none:
    # "insufficient history", correctly no point); the agent's own record_metrics, given a
    # scored volume result, writes it on the declared instrument.
    from edp.quality.model import CheckResult
    from edp.quality.runner import record_metrics

    record_metrics(
        [
            CheckResult(
                check_name="raw.user_events.volume",
                check_type="volume",
                table_ref="raw.user_events",
                status="fail",
                metric_value=12.0,
                expected_value=100.0,
                score=-4.2,
            )
        ]
    )
    dead = f"http://127.0.0.1:{free_port()}"
    settings = get_settings().model_copy(
        update={"quality_llm": "vertex", "quality_llm_base_url": dead, "quality_llm_timeout_s": 2}
    )
    evidence = Evidence(
        group="orders",
        run_time="2026-11-21T12:00:00+00:00",
        failing=[
            CheckEvidence(
                check_name="raw.cdc_orders.volume",
                check_type="volume",
                table="raw.cdc_orders",
                status="fail",
                severity="warning",
                value=1320.0,
                expected=1000.0,
                threshold=4.5,
                score=5.2,
                details={},
            )
        ],
    )
    report = write_report(evidence, settings, Credentials(token="t"))  # type: ignore[no-untyped-call]
    assert report.author.startswith("offline")
    notifier = SlackNotifier({"warning": f"{dead}/hook"}, timeout_s=2)
    with pytest.raises(TransientError):
        notifier.send(SlackMessage(severity="warning", text="x", blocks=[]))
    otel.flush_metrics(force=True)


def run_cdc_flush(mp: pytest.MonkeyPatch) -> None:
    suffix = uuid.uuid4().hex[:8]
    mp.setenv("EDP_CDC_TOPIC_PREFIX", f"cdc{suffix}")
    mp.setenv("EDP_CDC_SUBSCRIPTION_PREFIX", f"cdc-flush{suffix}")
    mp.setenv("EDP_CDC_DEAD_LETTER_TOPIC", f"cdc-dead-letter{suffix}")
    mp.setenv("EDP_TOPIC_EVENTS_DEAD_LETTER", f"events-dead-letter{suffix}")
    mp.setenv("EDP_MAX_DELIVERY_ATTEMPTS", "5")
    get_settings.cache_clear()
    settings = get_settings()
    ensure_cdc_topology(settings)
    topic = f"{settings.cdc_topic_prefix}.shop.orders"
    good = json.loads((ROOT / "tests" / "cdc" / "data" / "orders_create.json").read_text())
    publish_all(topic, [Message(json.dumps(good).encode())], settings=settings)
    client = create_app(target="cdc_flush", source=MAIN).test_client()
    response = client.post("/", json={"max_run_s": 2})
    assert response.status_code == 200, response.get_data(as_text=True)
    # A poison message, parked on the dead-letter topic by the same flusher class.
    _fast_redelivery(settings.project, f"{settings.cdc_subscription_prefix}.shop.orders")
    publish_all(topic, [Message(b"{not json")], settings=settings)
    flusher = CdcFlusher(get_warehouse, settings.model_copy(update={"cdc_flush_interval_sec": 0.3}))
    flusher.run(until_idle_s=5.0, max_run_s=120)
    assert flusher.stats.dead_lettered == 1
    otel.flush_metrics(force=True)


def _fast_redelivery(project: str, subscription: str) -> None:
    """Redelivery backs off 10 s and more by the subscription's retry policy: make it short."""
    from edp.bus.clients import get_subscriber, subscription_path

    get_subscriber(get_settings()).update_subscription(
        request={
            "subscription": {
                "name": subscription_path(project, subscription),
                "retry_policy": {
                    "minimum_backoff": {"seconds": 0},
                    "maximum_backoff": {"seconds": 1},
                },
            },
            "update_mask": {"paths": ["retry_policy"]},
        }
    )


def record_deployed_components(
    mp: pytest.MonkeyPatch, tmp: Path, project: str, emulator_host: str
) -> Recorded:
    """Everything ingest, etl (with the freshness probe) and cdc_flush write, as recorded."""
    mp.setenv("EDP_WAREHOUSE", "duckdb")
    mp.setenv("EDP_STATE_DIR", str(tmp / "state"))
    mp.setenv("EDP_DUCKDB_PATH", str(tmp / "warehouse.duckdb"))
    get_settings.cache_clear()
    wh = get_warehouse(get_settings())
    wh.create_tables()
    wh.close()
    with cloud_monitoring(mp) as fake:
        # each component's own settings only while it runs (the emulator is shared)
        with pytest.MonkeyPatch.context() as own:
            run_ingest(own, project, emulator_host)
        get_settings.cache_clear()
        run_etl()
        run_quality()
        with pytest.MonkeyPatch.context() as own:
            run_cdc_flush(own)
        get_settings.cache_clear()
    return fake.recorded
