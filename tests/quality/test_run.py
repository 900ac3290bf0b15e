"""A run over a real DuckDB warehouse: the SQL measurements, stored results, metrics, the
stateless incident cycle (open -> quiet -> resolved) with Slack messages to a capture server,
and the ``quality_check`` HTTP entry point.

Expected rates are counted by hand from the rows each test inserts.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import flask
import pytest
from tests.quality.conftest import CaptureServer

from edp.alerting.slack import SlackNotifier
from edp.quality.agent import run_agent
from edp.quality.app import handle
from edp.quality.calendar import PromotionCalendar
from edp.quality.runner import run_checks
from edp.quality.store import flagged_slots
from edp.settings import Settings
from edp.warehouse.port import Warehouse

NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)
EVENTS = ["raw.user_events"]


def events(
    at: datetime, n: int, *, null_sessions: int = 0, repeat: int = 0, loaded: datetime | None = None
) -> list[dict[str, Any]]:
    """``n`` events spread over the hour before ``at``; the first ``null_sessions`` without a
    session id; the last ``repeat`` re-use the first event ids."""
    rows = []
    for i in range(n):
        ts = at - timedelta(minutes=59) + timedelta(seconds=i * 3540 // max(n, 1))
        rows.append(
            {
                "event_id": str(uuid.uuid4()),
                "event_type": "page_view" if i % 3 else "view_item",
                "event_timestamp": ts,
                "received_at": ts,
                "ingested_at": ts,
                "loaded_at": loaded or ts,
                "anonymous_id": f"anon-{i % 17}",
                "session_id": None if i < null_sessions else f"s-{i % 11}",
                "device_type": "mobile",
                "platform": "web",
                "schema_version": "1",
            }
        )
    for j in range(repeat):
        rows[n - 1 - j]["event_id"] = rows[j]["event_id"]
    return rows


def by_name(results: list[Any]) -> dict[str, Any]:
    return {r.check_name: r for r in results}


def test_a_run_measures_the_window_and_stores_one_row_per_check(warehouse: Warehouse) -> None:
    # 200 events: 20 without session (10 % > 5 %), 4 re-sent ids (4 / 200 = 2 % > 1 %)
    warehouse.insert_rows(
        "raw.user_events",
        events(NOW, 200, null_sessions=20, repeat=4, loaded=NOW - timedelta(minutes=10)),
    )
    run = run_checks(warehouse, NOW, tables=EVENTS, calendar=PromotionCalendar())
    got = by_name(run.results)
    assert got["raw.user_events.null_rate.session_id"].metric_value == pytest.approx(0.10)
    assert got["raw.user_events.null_rate.session_id"].status == "fail"
    assert got["raw.user_events.null_rate.event_type"].metric_value == 0.0
    assert got["raw.user_events.duplicate_rate"].metric_value == pytest.approx(0.02)
    assert got["raw.user_events.duplicate_rate"].status == "fail"
    assert got["raw.user_events.freshness"].metric_value == pytest.approx(10.0)
    assert got["raw.user_events.freshness"].status == "pass"
    assert got["raw.user_events.schema_drift"].status == "pass"
    # one hour of data is no history: neither pass nor fail
    assert got["raw.user_events.volume"].status == "insufficient_history"
    assert got["raw.user_events.volume"].metric_value == 200
    stored = warehouse.query(
        "SELECT check_name, status, metric_value FROM monitoring.data_quality_checks "
        "WHERE checked_at >= @t AND run_id = @r",
        {"t": NOW - timedelta(days=1), "r": run.run_id},
    ).rows
    assert len(stored) == len(run.results)
    assert {r["check_name"]: r["status"] for r in stored}[
        "raw.user_events.duplicate_rate"
    ] == "fail"


def test_an_empty_table_is_stale_not_an_error(warehouse: Warehouse) -> None:
    run = run_checks(warehouse, NOW, tables=["raw.cdc_orders"], store=False)
    got = by_name(run.results)
    assert got["raw.cdc_orders.freshness"].status == "fail"
    assert got["raw.cdc_orders.freshness"].metric_value == 48 * 60  # the whole look-back
    assert not [r for r in run.results if r.status == "error"]


def test_metrics_are_exported_per_table(warehouse: Warehouse) -> None:
    from edp.observability.metrics import prometheus_text

    warehouse.insert_rows("raw.user_events", events(NOW, 100, null_sessions=25))
    run_checks(warehouse, NOW, tables=EVENTS, store=False)
    text = prometheus_text().decode()
    null_line = next(
        line
        for line in text.splitlines()
        if line.startswith("data_null_rate{") and 'column="session_id"' in line
    )
    assert null_line.endswith(" 0.25")
    assert any(
        line.startswith("data_quality_check_status{")
        and 'check_name="raw.user_events.null_rate.session_id"' in line
        and line.endswith(" 2.0")
        for line in text.splitlines()
    )
    assert "data_freshness_minutes{" in text


def test_flagged_volume_slots_are_read_back(warehouse: Warehouse) -> None:
    from edp.quality.model import CheckResult
    from edp.quality.store import write_results

    slot = NOW - timedelta(hours=1)
    flagged = CheckResult(
        check_name="raw.user_events.volume",
        check_type="volume",
        table_ref="raw.user_events",
        status="fail",
        details={"slots": [slot.isoformat(), (slot + timedelta(minutes=30)).isoformat()]},
    )
    write_results(warehouse, "run-1", NOW, [flagged])
    assert flagged_slots(warehouse, NOW + timedelta(days=7)) == {
        "raw.user_events": frozenset({slot, slot + timedelta(minutes=30)})
    }


def test_one_message_per_incident_quiet_then_recovery(
    warehouse: Warehouse, capture_server: CaptureServer
) -> None:
    settings = Settings(_env_file=None, quality_quiet_minutes=120)
    notifier = SlackNotifier({"warning": capture_server.url, "critical": capture_server.url})

    def run(at: datetime) -> Any:
        return run_agent(
            warehouse, at, settings=settings, notifier=notifier, tables=EVENTS,
            calendar=PromotionCalendar(),
        )  # fmt: skip

    # two failing checks (nulls and duplicates) -> one incident, one message
    warehouse.insert_rows("raw.user_events", events(NOW, 200, null_sessions=30, repeat=6))
    first = run(NOW)
    assert [d.action for d in first.decisions] == ["opened"]
    assert len(capture_server.requests) == 1
    sent = capture_server.requests[0].json()
    assert "raw.user_events.duplicate_rate" in sent["text"]
    assert "raw.user_events.null_rate.session_id" in sent["text"]
    report = first.reports[first.decisions[0].state.incident_id]
    assert report.author.startswith("offline rule-based analyst")
    # 30 minutes later, the same failures (a new batch like the first): the stored state keeps
    # it quiet -- window [11:30, 12:30): 300 rows, 30 null sessions, 6 re-sent ids
    warehouse.insert_rows(
        "raw.user_events", events(NOW + timedelta(minutes=30), 200, null_sessions=30, repeat=6)
    )
    second = run(NOW + timedelta(minutes=30))
    assert [d.action for d in second.decisions] == ["quiet"]
    assert second.decisions[0].state.incident_id == first.decisions[0].state.incident_id
    assert len(capture_server.requests) == 1
    # clean traffic: resolved, one recovery message
    later = NOW + timedelta(hours=3)
    warehouse.insert_rows("raw.user_events", events(later, 200))
    third = run(later)
    assert [d.action for d in third.decisions] == ["resolved"]
    assert capture_server.requests[-1].json()["text"].startswith("[RESOLVED]")
    assert len(capture_server.requests) == 2
    states = warehouse.query(
        "SELECT action FROM monitoring.quality_incidents WHERE updated_at >= @t "
        "ORDER BY updated_at",
        {"t": NOW - timedelta(days=1)},
    ).rows
    assert [s["action"] for s in states] == ["opened", "quiet", "resolved"]


@pytest.fixture
def app() -> Iterator[flask.Flask]:
    yield flask.Flask("quality_test")


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"tables": []}, 400, "invalid request"),
        ({"nope": 1}, 400, "invalid request"),
        ({"now": "2026-12-06T12:00:00"}, 400, "invalid request"),  # no zone
        ({"tables": ["raw.nowhere"]}, 400, "unknown table"),
    ],
)
def test_http_bad_requests_are_4xx(
    app: flask.Flask, warehouse: Warehouse, body: dict[str, Any], status: int, error: str
) -> None:
    with app.test_request_context(json=body, method="POST"):
        response = handle(flask.request, warehouse)
    assert response.status_code == status
    assert response.get_json()["error"] == error


def test_http_run(app: flask.Flask, warehouse: Warehouse) -> None:
    warehouse.insert_rows("raw.user_events", events(NOW, 50))
    body = {"tables": ["raw.user_events"], "now": NOW.isoformat()}
    with app.test_request_context(json=body, method="POST"):
        response = handle(flask.request, warehouse)
    assert response.status_code == 200
    doc = response.get_json()
    assert doc["checked_at"] == NOW.isoformat()
    assert doc["checks"]["pass"] >= 8
    assert doc["failing"] == []


def test_the_entry_point_is_exported() -> None:
    from test_doctests import load_main

    assert callable(load_main().quality_check)


def test_cli_run_prints_the_summary(warehouse: Warehouse) -> None:
    import json

    from typer.testing import CliRunner

    from edp_tools.cli.main import app as cli

    warehouse.insert_rows("raw.user_events", events(NOW, 100, null_sessions=40))
    result = CliRunner().invoke(
        cli, ["quality", "run", "--table", "raw.user_events", "--now", NOW.isoformat(), "--json"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert "raw.user_events.null_rate.session_id" in doc["failing"]
    assert doc["incidents"][0]["action"] == "opened"
    bad = CliRunner().invoke(cli, ["quality", "run", "--now", "2026-12-06T12:00:00"])
    assert bad.exit_code != 0


def test_schema_drift_sees_a_column_added_outside_schemas(warehouse: Warehouse) -> None:
    warehouse.execute_script("ALTER TABLE raw.bad_events ADD COLUMN experiment STRING")
    run = run_checks(warehouse, NOW, tables=["raw.bad_events", "raw.user_events"], store=False)
    got = by_name(run.results)
    drift = got["raw.bad_events.schema_drift"]
    assert (drift.status, drift.details["added"], drift.severity) == (
        "fail",
        ["experiment"],
        "warning",
    )
    assert got["raw.user_events.schema_drift"].status == "pass"


def test_evidence_relates_events_cdc_orders_and_refusals(warehouse: Warehouse) -> None:
    from edp.contracts.catalog import load_catalog
    from edp.quality.evidence import gather

    rows = events(NOW, 30)
    for r in rows[:3]:
        r["event_type"] = "purchase"
    warehouse.insert_rows("raw.user_events", rows)
    warehouse.insert_rows(
        "monitoring.pipeline_runs",
        [{"run_id": "r1", "pipeline": "daily_etl", "task": "mart.orders_daily",
          "status": "failed", "started_at": NOW - timedelta(hours=2), "error": "boom"}],
    )  # fmt: skip
    run = run_checks(warehouse, NOW, tables=EVENTS, store=False)
    ev = gather(warehouse, load_catalog(), PromotionCalendar(), "events", [], run.results, NOW)
    assert ev.related == {"purchase_events": 3.0, "cdc_orders_created": 0.0, "refused_events": 0.0}
    assert [r["error"] for r in ev.recent_runs] == ["boom"]


def test_an_undelivered_alert_is_sent_on_the_next_run(
    warehouse: Warehouse, capture_server: CaptureServer
) -> None:
    settings = Settings(_env_file=None, quality_quiet_minutes=120)
    notifier = SlackNotifier({"warning": capture_server.url}, max_rate_limit_retries=0)
    capture_server.answers = [(503, {}, b"down"), (200, {}, b"ok")]
    warehouse.insert_rows("raw.user_events", events(NOW, 200, null_sessions=30))
    first = run_agent(warehouse, NOW, settings=settings, notifier=notifier, tables=EVENTS,
                      calendar=PromotionCalendar())  # fmt: skip
    assert (first.decisions[0].action, first.sent) == ("opened", 0)
    second = run_agent(warehouse, NOW + timedelta(minutes=5), settings=settings,
                       notifier=notifier, tables=EVENTS, calendar=PromotionCalendar())  # fmt: skip
    assert (second.decisions[0].action, second.sent) == ("realerted", 1)
    assert len(capture_server.requests) == 2
