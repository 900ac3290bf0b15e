"""Every entry point of functions/main.py, run as Cloud Run would run it.

The archive Terraform uploads is built with Terraform's own rules, only its requirements.txt is
installed into a clean venv, and each function is served by functions-framework with the
environment Terraform gives it (``EDP_WAREHOUSE=bigquery``, ``EDP_METRICS_EXPORTER=
cloud_monitoring``, ...). The only substitutions are the endpoints of GCP's APIs: the official
Pub/Sub emulator, the BigQuery REST emulator and a Monitoring endpoint on loopback. Each test
exercises the function's real work and reads the result back from the emulators.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from edp.bus.admin import ensure_topology
from edp.bus.messages import Message, publish_all, pull
from edp.cdc.topology import cdc_topology
from edp.settings import Settings
from edp.warehouse.bigquery_adapter import BigQueryWarehouse
from edp_tools.local.pubsub_emulator import PubSubEmulator

from .bq_proxy import BigQueryProxy
from .conftest import PROJECT, TFVARS
from .terraform_env import function_env

ROOT = Path(__file__).resolve().parents[2]
WRITE_KEY = "deploy-test-key"

pytestmark = [pytest.mark.timeout(900), pytest.mark.slow]


def _settings(emulator: PubSubEmulator, bq: str | None = None, **extra: Any) -> Settings:
    """The test's own view of the deployment (to create resources and read results)."""
    return Settings(
        _env_file=None,
        project=PROJECT,
        pubsub_emulator_host=emulator.host,
        warehouse="bigquery",
        bigquery_api_endpoint=bq,
        bigquery_location=TFVARS["bigquery_location"],
        **extra,
    )


@pytest.fixture
def topology(pubsub_emulator: PubSubEmulator) -> Settings:
    """Every topic and subscription, as 04-pubsub.tf creates them."""
    settings = _settings(pubsub_emulator)
    ensure_topology(cdc_topology(settings), settings=settings)
    return settings


@pytest.fixture
def warehouse(pubsub_emulator: PubSubEmulator, bq_endpoint: str) -> Iterator[BigQueryWarehouse]:
    """Every catalogue table in the BigQuery emulator, as 03-bigquery.tf creates them."""
    wh = BigQueryWarehouse(settings=_settings(pubsub_emulator, bq_endpoint), deadline_s=60)
    wh.create_tables()
    yield wh
    wh.close()


def test_ingest_publishes_a_batch(serve: Callable[..., Any], topology: Settings) -> None:
    # drain what an earlier run left on the subscription
    pull(topology.subscription_events_loader, settings=topology, return_immediately=True)
    ids = [str(uuid.uuid4()) for _ in range(3)]
    batch = [
        {
            "event_id": event_id,
            "event_type": "page_view",
            "anonymous_id": "anon-deploy",
            "client_timestamp": "2026-11-26T10:00:00.000Z",
            "page_location": "https://shop.example/p/1",
        }
        for event_id in ids
    ]
    with serve("ingest", secrets={"ingest-write-keys": f"other-key,{WRITE_KEY}"}) as url:
        assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
        response = httpx.post(
            f"{url}/v1/events", json=batch, headers={"X-Write-Key": WRITE_KEY}, timeout=30
        )
        assert response.status_code == 200, response.text
        refused = httpx.post(
            f"{url}/v1/events", json=batch, headers={"X-Write-Key": "wrong"}, timeout=30
        )
        assert refused.status_code == 401
    published: list[str] = []
    for _ in range(20):
        for message in pull(topology.subscription_events_loader, settings=topology):
            published += [json.loads(line)["event_id"] for line in message.data.splitlines()]
        if set(ids) <= set(published):
            break
    assert set(ids) <= set(published)


def _debezium_order(order_id: int, lsn: int, status: str) -> bytes:
    event = json.loads((ROOT / "tests" / "cdc" / "data" / "orders_create.json").read_text())
    event["payload"]["after"]["order_id"] = order_id
    event["payload"]["after"]["status"] = status
    event["payload"]["source"]["lsn"] = lsn
    return json.dumps(event).encode()


def test_cdc_flush_writes_raw_and_refreshes_staging(
    serve: Callable[..., Any], topology: Settings, warehouse: BigQueryWarehouse, bq_endpoint: str
) -> None:
    topic = f"{topology.cdc_topic_prefix}.shop.orders"
    # order 1 created then paid (two versions), order 2 created
    publish_all(
        topic,
        [
            Message(_debezium_order(1, 5000, "pending")),
            Message(_debezium_order(1, 5100, "paid")),
            Message(_debezium_order(2, 5200, "pending")),
        ],
        settings=topology,
    )
    with serve("cdc_flush", bq=bq_endpoint) as url:
        # The flush pulls for 8 s (the changes were published before), then refreshes staging.
        # It used to answer after ~110 s: its trace export retried a Cloud Trace that never
        # answered for 120 s on the request thread (tests/observability/test_cloud_trace_export).
        response = httpx.post(f"{url}/", json={"max_run_s": 8}, timeout=300)
    assert response.status_code == 200, response.text
    raw = warehouse.query("SELECT order_id, status, lsn FROM raw.cdc_orders ORDER BY lsn").rows
    assert [(r["order_id"], r["status"]) for r in raw][-3:] == [
        (1, "pending"),
        (1, "paid"),
        (2, "pending"),
    ]
    staged = warehouse.query("SELECT order_id, status FROM staging.orders ORDER BY order_id").rows
    assert [(r["order_id"], r["status"]) for r in staged] == [(1, "paid"), (2, "pending")]


def test_etl_runs_a_days_staging_and_a_mart(
    serve: Callable[..., Any], warehouse: BigQueryWarehouse, bq_endpoint: str
) -> None:
    day = dt.date(2026, 11, 25)
    events = [
        {
            "event_id": str(uuid.uuid4()),
            "event_type": "page_view",
            "user_id": f"u{n}",
            "anonymous_id": f"a{n}",
            "session_id": f"s{n}",
            "event_timestamp": dt.datetime(2026, 11, 25, 3, n, tzinfo=dt.UTC),
            "received_at": dt.datetime(2026, 11, 25, 3, n, 1, tzinfo=dt.UTC),
            "ingested_at": dt.datetime(2026, 11, 25, 3, n, 1, tzinfo=dt.UTC),
            "device_type": "mobile",
            "platform": "web",
            "schema_version": "1",
        }
        for n in range(3)
    ]
    warehouse.insert_rows("raw.user_events", events)
    with BigQueryProxy(bq_endpoint) as proxy, serve("etl", bq=proxy.url) as url:
        models = httpx.get(f"{url}/models", timeout=30)
        assert models.status_code == 200, models.text
        staging = httpx.post(
            f"{url}/", json={"date": day.isoformat(), "layer": "staging"}, timeout=300
        )
        assert staging.status_code == 200, staging.text
        mart = httpx.post(
            f"{url}/",
            json={"date": day.isoformat(), "model": "mart.daily_active_users"},
            timeout=300,
        )
        assert mart.status_code == 200, mart.text
    # the guardrail: every job the function sent carried the byte cap Terraform configured
    jobs = proxy.jobs()
    assert jobs
    caps = {
        int(job.get("configuration", {}).get("query", job).get("maximumBytesBilled", 0))
        for job in jobs
    }
    assert caps == {int(function_env("etl", TFVARS)[0]["EDP_MAXIMUM_BYTES_BILLED"])}
    dau = warehouse.query(
        "SELECT dau FROM mart.daily_active_users "
        "WHERE report_date = @d AND device_type = 'all' AND platform = 'all'",
        {"d": day},
    ).rows
    assert [r["dau"] for r in dau] == [3]
    runs = warehouse.query(
        "SELECT task, status FROM monitoring.pipeline_runs WHERE run_date = @d",
        {"d": day},
    ).rows
    assert {r["status"] for r in runs} == {"success"}
    assert {r["task"] for r in runs} >= {"staging.user_events", "mart.daily_active_users"}


def test_sql_review_prices_a_query(
    serve: Callable[..., Any], warehouse: BigQueryWarehouse, bq_endpoint: str
) -> None:
    sql = "SELECT * FROM raw.user_events"
    with (
        BigQueryProxy(bq_endpoint) as proxy,
        serve(
            "sql_review",
            bq=proxy.url,
            secrets={"slack-webhook-warning": "http://127.0.0.1:9/unused"},
        ) as url,
    ):
        response = httpx.post(f"{url}/", json={"sql": sql}, timeout=120)
        assert response.status_code == 200, response.text
        rules = {f["rule"] for f in response.json()["findings"]}
        # a partitioned table read whole, by a bare SELECT *: the reference tool's rule and ours
        assert {"SimpleSelectStar", "MissingPartitionFilter"} <= rules
        refused = httpx.post(f"{url}/", json={"sql": "SELECT ((1"}, timeout=60)
        assert refused.status_code == 400
    # the bytes came from a BigQuery dry run, capped like every other job
    dry_runs = [j for j in proxy.jobs() if j.get("configuration", {}).get("dryRun")]
    assert dry_runs


def test_quality_check_runs_and_stores_results(
    serve: Callable[..., Any], warehouse: BigQueryWarehouse, bq_endpoint: str
) -> None:
    secrets = {
        "slack-webhook-critical": "http://127.0.0.1:9/unused",
        "slack-webhook-warning": "http://127.0.0.1:9/unused",
    }
    now = "2026-11-25T12:00:00+00:00"
    with (
        BigQueryProxy(bq_endpoint) as proxy,
        serve("quality_check", bq=proxy.url, secrets=secrets) as url,
    ):
        response = httpx.post(
            f"{url}/", json={"tables": ["raw.user_events"], "now": now}, timeout=300
        )
    assert response.status_code == 200, response.text
    stored = warehouse.query(
        "SELECT table_ref, check_name, status FROM monitoring.data_quality_checks "
        "WHERE checked_at >= TIMESTAMP '2026-11-25'"
    ).rows
    assert stored and {r["table_ref"] for r in stored} == {"raw.user_events"}
