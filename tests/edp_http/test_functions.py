"""etl and cdc_flush: explicit routes and methods, bounded bodies, every failed run recorded,
and run-time bounds that fit the Terraform timeouts.

Expected values: ``terraform/variables.tf`` (``var.functions.<name>.timeout_s``: ingest 30 s,
cdc_flush 540 s, etl 1800 s) and ``workflows/daily_etl.yaml`` (the ETL call's ``timeout``);
Cloud Run ends a request at its timeout, so every bound in code must end inside it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml
from flask import Flask

from edp.cdc import app as cdc_app
from edp.etl.app import create_app as create_etl_app
from edp.settings import Settings
from edp.warehouse.port import Warehouse

ROOT = Path(__file__).resolve().parents[2]


def _function_timeouts() -> dict[str, int]:
    with (ROOT / "terraform" / "variables.tf").open() as fh:
        variables = hcl2.load(fh)["variable"]
    (functions,) = [v['"functions"'] for v in variables if '"functions"' in v]
    return {name: int(spec["timeout_s"]) for name, spec in functions["default"].items()}


def _workflow_etl_timeout() -> int:
    text = (ROOT / "workflows" / "daily_etl.yaml").read_text()
    found: list[int] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("call") == "http.post" and "functionUrl" in str(node["args"].get("url")):
                found.append(int(node["args"]["timeout"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(yaml.safe_load(text))
    assert found, "no ETL call found in the workflow"
    return max(found)


def test_run_time_bounds_fit_the_terraform_timeouts() -> None:
    timeouts = _function_timeouts()
    assert timeouts["cdc_flush"] == cdc_app.CDC_FLUSH_TIMEOUT_S
    assert timeouts["cdc_flush"] >= cdc_app.MAX_RUN_S + cdc_app.DRAIN_MARGIN_S
    limit = Settings.model_fields["cdc_flush_max_run_sec"].metadata
    assert any(getattr(m, "le", None) == cdc_app.MAX_RUN_S for m in limit)
    assert cdc_app.FlushRequest.model_fields["max_run_s"].metadata
    # A body that takes longer than the request may run is cut off by Cloud Run anyway.
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    assert defaults.body_read_timeout_sec < timeouts["ingest"]
    assert defaults.cdc_flush_max_run_sec <= cdc_app.MAX_RUN_S
    assert _workflow_etl_timeout() <= timeouts["etl"]


# --- cdc_flush ------------------------------------------------------------------------------------
def _never() -> Warehouse:
    raise AssertionError("the refused request reached the flush")


@pytest.fixture
def flush_app() -> Flask:
    return cdc_app.create_app(_never)


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/", None, 405),
        ("PUT", "/", b"{}", 405),
        ("POST", "/flush", b"{}", 404),
        ("POST", "/", b"garbage", 400),
        ("POST", "/", b"[1, 2]", 400),
        ("POST", "/", b"[" * 100_000 + b"]" * 100_000, 413),
        ("POST", "/", b"[" * 1_000 + b"]" * 1_000, 400),
        ("POST", "/", b'{"max_run_s": 3600}', 400),
        ("POST", "/", b'{"max_run_s": 481}', 400),
        ("POST", "/", b'{"refresh": true}', 400),
    ],
)
def test_cdc_flush_refuses_without_flushing(
    flush_app: Flask, method: str, path: str, body: bytes | None, status: int
) -> None:
    r = flush_app.test_client().open(path, method=method, data=body)
    assert r.status_code == status, r.get_data(as_text=True)
    assert r.json["reason"] and r.json["success"] is False


# --- etl ------------------------------------------------------------------------------------------
def _runs(warehouse: Warehouse) -> list[dict[str, Any]]:
    return warehouse.query(
        "SELECT task, run_date, status, error FROM monitoring.pipeline_runs ORDER BY finished_at"
    ).rows


@pytest.fixture
def etl_app(warehouse: Warehouse) -> Flask:
    return create_etl_app(lambda: warehouse)


@pytest.mark.parametrize(
    ("body", "task"),
    [
        (b'{"date": "0001-01-01", "layer": "staging"}', "staging"),
        (b'{"date": "9999-12-31", "model": "mart.orders_daily"}', "mart.orders_daily"),
        (b'{"date": "2026-02-30"}', "daily_etl"),
        (b'{"layer": "staging", "date": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "daily_etl"),
        (b"not json", "daily_etl"),
    ],
)
def test_etl_refused_runs_are_400_and_recorded(
    etl_app: Flask, warehouse: Warehouse, body: bytes, task: str
) -> None:
    r = etl_app.test_client().post("/", data=body, content_type="application/json")
    assert r.status_code in (400, 413), r.json
    assert r.json["reason"]
    (row,) = _runs(warehouse)
    assert (row["task"], row["status"]) == (task, "failed")
    assert row["error"]


def test_etl_first_valid_run_date_is_accepted(etl_app: Flask, warehouse: Warehouse) -> None:
    """1970-01-01 (lookback 30 days reaches 1969-12-02) is inside every range involved."""
    r = etl_app.test_client().post("/", json={"date": "1970-01-01", "model": "mart.orders_daily"})
    assert r.status_code == 200, r.json
    assert {row["status"] for row in _runs(warehouse)} == {"success"}
    assert all(row["run_date"] == dt.date(1970, 1, 1) for row in _runs(warehouse))


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/", 405), ("PUT", "/run", 405), ("POST", "/models", 405), ("POST", "/x", 404)],
)
def test_etl_routes_and_methods_are_explicit(
    etl_app: Flask, method: str, path: str, status: int
) -> None:
    r = etl_app.test_client().open(path, method=method, json={})
    assert r.status_code == status
    assert r.json["success"] is False and r.json["reason"]
