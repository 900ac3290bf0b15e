"""The ``etl`` HTTP function through its flask app (``create_app(...).test_client()``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from edp.etl.app import create_app
from edp.etl.runner import yesterday
from edp.settings import get_settings
from edp.warehouse.port import Warehouse

from .golden import GOLDEN, load_case, play

DAY = "2026-11-21"


@pytest.fixture
def client(warehouse: Warehouse) -> Iterator[FlaskClient]:
    # the staging and orders inputs of the golden cases, so every model has rows to write
    for name in ("staging_user_events", "mart_orders_daily"):
        case = load_case(GOLDEN / f"{name}.yaml")
        play({"steps": [s for s in case["steps"] if "insert" in s]}, warehouse, get_settings())
    yield create_app(warehouse_factory=lambda: warehouse).test_client()


def runs(warehouse: Warehouse) -> list[dict[str, Any]]:
    return warehouse.query(
        "SELECT task, run_date, status, rows_written, error, `trigger`, execution_id "
        "FROM monitoring.pipeline_runs WHERE started_at IS NOT NULL ORDER BY finished_at"
    ).rows


def test_runs_a_layer_in_dependency_order(client: FlaskClient, warehouse: Warehouse) -> None:
    response = client.post("/", json={"date": DAY, "layer": "staging", "lookback_days": 1})
    assert response.status_code == 200, response.json
    body = response.json
    assert body["status"] == "success" and body["date"] == DAY
    assert [r["model"] for r in body["runs"]] == [
        "staging.user_events",
        "staging.user_first_seen",
        "staging.user_identities",
    ]
    assert body["runs"][0]["rows_written"] == 16  # the golden staging case's 16 events
    assert body["runs"][0]["window_start"] == "2026-11-20"
    assert all(r["duration_s"] > 0 and r["bytes_processed"] >= 0 for r in body["runs"])
    assert body["rows_written"] == sum(r["rows_written"] for r in body["runs"])
    recorded = runs(warehouse)
    assert [(r["task"], r["status"], r["trigger"]) for r in recorded] == [
        ("staging.user_events", "success", "http"),
        ("staging.user_first_seen", "success", "http"),
        ("staging.user_identities", "success", "http"),
    ]


def test_one_model_with_the_workflow_execution_id(
    client: FlaskClient, warehouse: Warehouse
) -> None:
    response = client.post(
        "/run", json={"date": DAY, "model": "mart.orders_daily", "execution_id": "exec-1"}
    )
    assert response.status_code == 200, response.json
    # the default 3-day lookback owns 11-18..11-21: the golden orders fall on 11-20 (KRW) and
    # 11-21 (KRW and USD: one row per currency)
    assert [(r["model"], r["rows_written"]) for r in response.json["runs"]] == [
        ("mart.orders_daily", 3)
    ]
    (row,) = runs(warehouse)
    assert (row["trigger"], row["execution_id"]) == ("workflow", "exec-1")


def test_date_defaults_to_yesterday_in_the_etl_time_zone(client: FlaskClient) -> None:
    response = client.post("/", json={"model": "mart.orders_daily"})
    assert response.status_code == 200, response.json
    assert response.json["date"] == yesterday(get_settings().etl_timezone).isoformat()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"date": "2026-02-30", "layer": "staging"}, "date"),
        ({"date": DAY, "model": "raw.user_events"}, "model"),
        ({"date": DAY, "layer": "raw"}, "layer"),
        ({"date": DAY, "model": "mart.orders_daily", "layer": "mart"}, "(body)"),
        ({"date": DAY, "lookback_days": -1}, "lookback_days"),
        ({"date": DAY, "dry": True}, "dry"),
        (["not", "an", "object"], "(body)"),
    ],
)
def test_invalid_requests_are_400_with_the_field(
    client: FlaskClient, warehouse: Warehouse, body: Any, field: str
) -> None:
    response = client.post("/", json=body)
    assert response.status_code == 400
    assert field in [f["field"] for f in response.json["fields"]], response.json
    # nothing ran, and the refused run is recorded as failed (every failed run is)
    (row,) = runs(warehouse)
    assert (row["status"], row["rows_written"]) == ("failed", 0)
    assert row["error"].startswith(("invalid request", "(date", "refused"))


@pytest.mark.parametrize(
    ("execution_id", "recorded"),
    [("exec-9", ("workflow", "exec-9")), (7, ("http", None)), ("x" * 257, ("http", None))],
)
def test_a_refused_run_keeps_the_workflow_execution_id(
    client: FlaskClient, warehouse: Warehouse, execution_id: object, recorded: tuple[str, Any]
) -> None:
    body = {"date": "2026-02-30", "layer": "staging", "execution_id": execution_id}
    assert client.post("/", json=body).status_code == 400
    (row,) = runs(warehouse)
    assert (row["task"], row["status"]) == ("staging", "failed")
    assert (row["trigger"], row["execution_id"]) == recorded


def test_unknown_model_is_404(client: FlaskClient) -> None:
    response = client.post("/", json={"date": DAY, "model": "mart.nope"})
    assert response.status_code == 404
    assert "mart.orders_daily" in response.json["error"]  # lists what exists


def test_a_failing_model_is_422_and_recorded(client: FlaskClient, warehouse: Warehouse) -> None:
    warehouse.execute_script("DROP TABLE staging.orders")  # a permanent, data-side failure
    response = client.post("/", json={"date": DAY, "model": "mart.orders_daily"})
    assert response.status_code == 422
    assert response.json["failed"]["model"] == "mart.orders_daily"
    (row,) = runs(warehouse)
    assert row["status"] == "failed" and row["task"] == "mart.orders_daily"
    assert row["run_date"] == dt.date(2026, 11, 21) and row["error"]


def test_record_failure_keeps_an_unparseable_date_in_the_error(
    client: FlaskClient, warehouse: Warehouse
) -> None:
    response = client.post(
        "/record-failure",
        json={
            "date": "2026-13-45",
            "layer": "staging",
            "error": {"code": 400, "message": "HTTP 400"},
            "execution_id": "exec-2",
        },
    )
    assert response.status_code == 200, response.json
    (row,) = runs(warehouse)
    assert (row["task"], row["status"], row["run_date"]) == ("staging", "failed", None)
    assert "2026-13-45" in row["error"] and '"code": 400' in row["error"]
    assert (row["trigger"], row["execution_id"]) == ("workflow", "exec-2")


def test_models_route_lists_the_parallel_waves(client: FlaskClient) -> None:
    body = client.get("/models").json
    assert body["staging"]["waves"] == [
        ["staging.user_events"],
        ["staging.user_first_seen", "staging.user_identities"],
    ]
    assert len(body["mart"]["waves"]) == 1 and "mart.orders_daily" in body["mart"]["waves"][0]
