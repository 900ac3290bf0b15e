"""The ``sql_review`` HTTP function through flask's test client, on a real DuckDB warehouse
and a local Slack webhook stand-in."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from flask.testing import FlaskClient

from edp.settings import Settings
from edp.sqlreview.app import MAX_BODY_BYTES, create_app
from edp.sqlreview.history import QueryLogFile
from edp_tools.sqlreview.equivalence import DuckDBVerifier

if TYPE_CHECKING:
    from tests.sqlreview.conftest import SlackCapture

    from edp.warehouse.port import Warehouse

COSTLY = "SELECT event_id FROM raw.user_events WHERE DATE(event_timestamp) = '2026-12-01'"


def _client(warehouse: Warehouse, **settings: Any) -> FlaskClient:
    conf = Settings(_env_file=None, **settings)
    app = create_app(
        settings=conf,
        warehouse_factory=lambda: _Borrowed(warehouse),
        verifier=DuckDBVerifier(warehouse),
    )
    return app.test_client()


class _Borrowed:
    """The test's warehouse, not closed by the app (the fixture closes it)."""

    def __init__(self, inner: Warehouse) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def close(self) -> None:
        return


def test_review_returns_priced_findings(warehouse: Warehouse) -> None:
    answer = _client(warehouse).post("/", json={"sql": COSTLY, "runs_per_day": 24})
    assert answer.status_code == 200
    body = answer.get_json()
    (finding,) = body["findings"]
    assert finding["rule"] == "PartitionFilterDefeated"
    assert finding["severity"] == "error"
    assert (finding["line"], finding["column"]) == (1, 44)
    # an empty table still bills BigQuery's 10 MiB minimum: $6.25/TiB x 10 MiB
    assert finding["bytes_before"] == 10 * 2**20
    assert finding["usd_before"] == pytest.approx(10 / 2**20 * 6.25, abs=1e-6)
    assert finding["rewrite"]["verified"] is True
    assert body["has_errors"] is True


def test_plain_text_body_is_a_query(warehouse: Warehouse) -> None:
    answer = _client(warehouse).post(
        "/", data="SELECT a FROM t ORDER BY a", content_type="text/plain"
    )
    assert answer.status_code == 200
    assert [f["rule"] for f in answer.get_json()["findings"]] == ["OrderByWithoutLimit"]


@pytest.mark.parametrize(
    ("kwargs", "status", "needle"),
    [
        ({"json": {"sql": "SELEC oops FROM"}}, 400, "does not parse"),
        ({"json": {"sql": ""}}, 400, "invalid request"),
        ({"json": {"query": "SELECT 1"}}, 400, "invalid request"),
        ({"json": [1, 2]}, 400, "invalid request"),
        ({"data": "x", "content_type": "application/xml"}, 415, "application/json"),
        ({"data": "x" * (MAX_BODY_BYTES + 1), "content_type": "text/plain"}, 413, "body over"),
        ({"json": {"mode": "scheduled", "day": "not a day"}}, 400, "invalid request"),
    ],
)
def test_bad_input_is_a_4xx_with_reason(
    warehouse: Warehouse, kwargs: dict[str, Any], status: int, needle: str
) -> None:
    answer = _client(warehouse).post("/", **kwargs)
    assert answer.status_code == status
    assert needle in json.dumps(answer.get_json())


def test_get_is_refused(warehouse: Warehouse) -> None:
    assert _client(warehouse).get("/").status_code == 405


def test_job_without_cap_is_an_error(warehouse: Warehouse) -> None:
    answer = _client(warehouse).post("/", json={"sql": "SELECT 1", "check_job": True})
    assert [f["rule"] for f in answer.get_json()["findings"]] == ["MissingMaximumBytesBilled"]


def _log(path: Path, jobs: list[tuple[str, str, int]]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for job_id, query, billed in jobs:
            record = {
                "job_id": job_id,
                "creation_time": "2026-12-05T03:00:00+00:00",
                "query": query,
                "total_bytes_billed": billed,
            }
            handle.write(json.dumps(record) + "\n")


def test_scheduled_mode_reviews_the_day_and_posts_to_slack(
    warehouse: Warehouse, slack_capture: SlackCapture, tmp_path: Path
) -> None:
    log = tmp_path / "query_log.jsonl"
    aggregate = (
        "SELECT event_type, COUNT(*) AS n FROM raw.user_events "
        "WHERE event_timestamp >= '2026-12-04' GROUP BY event_type"
    )
    _log(
        log,
        [
            ("j1", "SELECT event_id FROM raw.user_events", 400 * 2**30),
            ("j2", aggregate, 2**30),
            ("j3", aggregate, 2**30),
            ("j4", aggregate, 2**30),
        ],
    )
    client = _client(warehouse, query_log_path=log, slack_webhook_warning=slack_capture.url)
    answer = client.post("/", json={"mode": "scheduled", "day": "2026-12-05"})
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["jobs"] == 4 and body["findings"] == 1 and body["slack_posted"] is True
    assert len(body["materialized_views"]) == 1
    (message,) = slack_capture.posts
    assert message["text"].startswith("SQL cost review 2026-12-05: 4 jobs billed $2.46")
    assert message["blocks"][0]["type"] == "header"
    assert any("MissingPartitionFilter" in json.dumps(b) for b in message["blocks"])


def test_slack_refusal_is_reported(
    warehouse: Warehouse, slack_capture: SlackCapture, tmp_path: Path
) -> None:
    slack_capture.status = 404
    log = tmp_path / "log.jsonl"
    _log(log, [("j1", "SELECT event_id FROM raw.user_events", 2**30)])
    client = _client(warehouse, query_log_path=log, slack_webhook_warning=slack_capture.url)
    answer = client.post("/", json={"mode": "scheduled", "day": "2026-12-05"})
    assert answer.status_code == 502
    assert "404" in answer.get_json()["reason"]


def test_local_query_log_is_written_by_the_duckdb_warehouse(tmp_path: Path) -> None:
    from edp_tools.warehouse.duckdb_adapter import DuckDBWarehouse

    log = tmp_path / "q.jsonl"
    with DuckDBWarehouse(":memory:", settings=Settings(_env_file=None), query_log=log) as wh:
        wh.create_tables()
        wh.query("SELECT COUNT(*) AS n FROM raw.user_events")
    (job,) = QueryLogFile(log).jobs(dt.datetime.now(dt.UTC).date())
    assert job.query == "SELECT COUNT(*) AS n FROM raw.user_events"


def test_join_order_uses_the_warehouse_row_counts(warehouse: Warehouse) -> None:
    rows = [
        {
            "event_id": f"e{i}",
            "event_type": "page_view",
            "event_timestamp": "2026-12-01T00:00:00+00:00",
            "received_at": "2026-12-01T00:00:00+00:00",
            "ingested_at": "2026-12-01T00:00:00+00:00",
            "user_id": "u1",
            "device_type": "mobile",
            "platform": "web",
            "schema_version": "1.0",
        }
        for i in range(3)
    ]
    warehouse.insert_rows("raw.user_events", rows)
    sql = (
        "SELECT f.user_key FROM staging.user_first_seen f "
        "JOIN raw.user_events e ON e.user_id = f.user_key "
        "WHERE f.first_seen_date = '2026-12-01' AND e.event_timestamp >= '2026-12-01'"
    )
    findings = _client(warehouse).post("/", json={"sql": sql}).get_json()["findings"]
    messages = [f["message"] for f in findings if f["rule"] == "JoinOrder"]
    assert messages == [
        "JOIN on tables: [user_first_seen, user_events] might perform better if tables where "
        "joined in the following order: [user_events, user_first_seen]"
    ]


def test_functions_framework_entry_point(warehouse: Warehouse) -> None:
    """`functions-framework --target sql_review` serves the same app (the Cloud Run path)."""
    import functions_framework

    from edp.sqlreview.app import default_app

    main = Path(__file__).resolve().parents[2] / "functions" / "main.py"
    default_app.cache_clear()
    try:
        client = functions_framework.create_app("sql_review", str(main)).test_client()
        answer = client.post("/", data=COSTLY, content_type="application/sql")
        assert answer.status_code == 200, answer.data
        assert [f["rule"] for f in answer.get_json()["findings"]] == ["PartitionFilterDefeated"]
        assert client.post("/", data="SELEC x FROM", content_type="text/plain").status_code == 400
    finally:
        default_app.cache_clear()
