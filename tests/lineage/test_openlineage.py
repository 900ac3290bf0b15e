"""OpenLineage run events of model runs: shape (from the spec), file and HTTP delivery, runner.

The required shape is written from the OpenLineage spec, not from our output:
``spec/OpenLineage.json`` 2-0-2 (RunEvent: eventType in START|RUNNING|COMPLETE|ABORT|FAIL|OTHER;
eventTime, producer (URI), schemaURL; run.runId a UUID; job.namespace, job.name; datasets have
namespace and name), every facet carries ``_producer`` and ``_schemaURL``;
``spec/facets/ColumnLineageDatasetFacet.json`` 1-2-0 (``fields.<column>.inputFields[]`` and
``dataset[]`` of InputField: namespace, name, field required; transformations[] with ``type``
DIRECT|INDIRECT and ``subtype``); ``ErrorMessageRunFacet`` 1-0-1 needs message and
programmingLanguage.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from edp.etl.models import MODELS_DIR, load_models
from edp.etl.runner import EtlRunner, ModelRunError
from edp.lineage.openlineage import FileSink, HttpSink, LineageEmitter, run_event, sink_for
from edp.settings import Settings
from edp.warehouse.port import Warehouse

AT = dt.datetime(2026, 11, 26, 3, 0, tzinfo=dt.UTC)


def _assert_spec_shape(event: dict[str, Any]) -> None:
    assert event["eventType"] in {"START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"}
    assert event["schemaURL"].startswith("https://openlineage.io/spec/2-0-2/OpenLineage.json")
    assert ":" in event["producer"]  # a URI
    dt.datetime.fromisoformat(event["eventTime"])
    uuid.UUID(event["run"]["runId"])
    assert event["job"]["namespace"] and event["job"]["name"]
    for facet in [
        *event["job"].get("facets", {}).values(),
        *event["run"].get("facets", {}).values(),
    ]:
        assert facet["_producer"] and facet["_schemaURL"].startswith("https://openlineage.io/spec/")
    for dataset in [*event["inputs"], *event["outputs"]]:
        assert dataset["namespace"] and dataset["name"]
    lineage = event["outputs"][0]["facets"]["columnLineage"]
    assert lineage["_schemaURL"].endswith("/1-2-0/ColumnLineageDatasetFacet.json")
    input_fields = [f for col in lineage["fields"].values() for f in col["inputFields"]]
    for field in [*input_fields, *lineage["dataset"]]:
        assert field["namespace"] and field["name"] and field["field"]
        for transformation in field["transformations"]:
            assert transformation["type"] in {"DIRECT", "INDIRECT"} and transformation["subtype"]


def test_a_run_event_carries_the_column_lineage_facet() -> None:
    event = run_event(
        "COMPLETE",
        str(uuid.uuid4()),
        "mart.orders_daily",
        at=AT,
        namespace="bigquery",
        job_namespace="edp-prod",
    )
    _assert_spec_shape(event)
    assert event["job"]["name"] == "daily_etl.mart.orders_daily"
    assert [d["name"] for d in event["inputs"]] == ["staging.orders"]
    output = event["outputs"][0]
    assert output["name"] == "mart.orders_daily"
    # orders_daily: customers = COUNT(DISTINCT user_id) of staging.orders
    (customers,) = output["facets"]["columnLineage"]["fields"]["customers"]["inputFields"]
    assert (customers["name"], customers["field"]) == ("staging.orders", "user_id")
    assert customers["transformations"] == [{"type": "DIRECT", "subtype": "AGGREGATION"}]
    schema_fields = [f["name"] for f in output["facets"]["schema"]["fields"]]
    # schemas/tables/mart/orders_daily.yaml: one row per (day, currency)
    assert schema_fields[:3] == ["report_date", "currency", "orders"]


def test_a_failed_run_event_has_the_error_message_facet() -> None:
    event = run_event(
        "FAIL",
        str(uuid.uuid4()),
        "mart.orders_daily",
        at=AT,
        namespace="duckdb",
        job_namespace="edp-local",
        error="DataQualityError: boom",
    )
    _assert_spec_shape(event)
    facet = event["run"]["facets"]["errorMessage"]
    assert facet["message"] == "DataQualityError: boom" and facet["programmingLanguage"]


def _runner(warehouse: Warehouse, tmp_path: Path, models_root: Path | None = None) -> EtlRunner:
    emitter = LineageEmitter(FileSink(tmp_path / "ol.jsonl"), "duckdb", "edp-test")
    models = load_models(models_root) if models_root else load_models()
    return EtlRunner(warehouse, models=models, trigger="test", lineage=emitter)


def _events(tmp_path: Path) -> list[dict[str, Any]]:
    lines = (tmp_path / "ol.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def test_each_model_run_emits_start_then_complete(warehouse: Warehouse, tmp_path: Path) -> None:
    _runner(warehouse, tmp_path).run(dt.date(2026, 11, 21), "staging")
    events = _events(tmp_path)
    assert [(e["eventType"], e["job"]["name"]) for e in events] == [
        ("START", "daily_etl.staging.user_events"),
        ("COMPLETE", "daily_etl.staging.user_events"),
        ("START", "daily_etl.staging.user_first_seen"),
        ("COMPLETE", "daily_etl.staging.user_first_seen"),
        ("START", "daily_etl.staging.user_identities"),
        ("COMPLETE", "daily_etl.staging.user_identities"),
    ]
    assert events[0]["run"]["runId"] == events[1]["run"]["runId"] != events[2]["run"]["runId"]
    for event in events:
        _assert_spec_shape(event)


def test_a_failing_model_emits_fail(warehouse: Warehouse, tmp_path: Path) -> None:
    root = tmp_path / "models"
    (root / "mart").mkdir(parents=True)
    shutil.copy(MODELS_DIR / "mart" / "orders_daily.sql", root / "mart" / "orders_daily.sql")
    (root / "mart" / "orders_daily.checks.sql").write_text(
        "-- check: always_violated\nselect 1 as x\n", encoding="utf-8"
    )
    with pytest.raises(ModelRunError):
        _runner(warehouse, tmp_path, root).run(dt.date(2026, 11, 21))
    start, fail = _events(tmp_path)
    assert (start["eventType"], fail["eventType"]) == ("START", "FAIL")
    assert "always_violated" in fail["run"]["facets"]["errorMessage"]["message"]


class _Capture(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, dict[str, Any]]]] = []
    status: ClassVar[int] = 200

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.path, json.loads(body)))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def capture_server() -> Iterator[tuple[str, type[_Capture]]]:
    handler = type("Capture", (_Capture,), {"received": [], "status": 200})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", handler
    finally:
        server.shutdown()
        server.server_close()


def test_events_are_posted_to_the_configured_endpoint(
    capture_server: tuple[str, type[_Capture]],
) -> None:
    url, handler = capture_server
    sink = sink_for(Settings(_env_file=None, openlineage_url=url))
    assert sink == HttpSink(f"{url}/api/v1/lineage")
    emitter = LineageEmitter(sink, "bigquery", "edp-prod")
    sent = emitter.emit("START", "run-1", "mart.conversion_funnel", AT)
    assert sent is not None
    ((path, body),) = handler.received
    assert path == "/api/v1/lineage"
    assert body == sent
    _assert_spec_shape(body)


def test_a_failing_endpoint_does_not_fail_the_caller(
    capture_server: tuple[str, type[_Capture]],
) -> None:
    url, handler = capture_server
    handler.status = 503
    emitter = LineageEmitter(HttpSink(f"{url}/api/v1/lineage"), "bigquery", "edp-prod")
    assert emitter.emit("COMPLETE", "run-1", "mart.orders_daily", AT) is None
    assert len(handler.received) == 1


def test_the_transport_follows_the_settings(tmp_path: Path) -> None:
    local = Settings(_env_file=None, state_dir=tmp_path)
    assert sink_for(local) == FileSink(tmp_path / "lineage" / "openlineage.jsonl")
    assert sink_for(Settings(_env_file=None, warehouse="bigquery")) is None
    with pytest.raises(Exception, match="EDP_OPENLINEAGE_URL"):
        sink_for(Settings(_env_file=None, openlineage_transport="http"))
