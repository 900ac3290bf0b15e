"""etl and cdc_flush: explicit routes and methods, bounded bodies, every failed run recorded,
and run-time bounds that fit the Terraform timeouts.

Expected values: ``terraform/variables.tf`` (``var.functions.<name>.timeout_s``: ingest 30 s,
cdc_flush 540 s, etl 1800 s) and ``workflows/daily_etl.yaml`` (the ETL call's ``timeout``);
Cloud Run ends a request at its timeout, so every bound in code must end inside it.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edp.cdc import app as cdc_app
from edp.etl.app import RunRequest
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


# --- property: no 5xx from any request to etl or cdc_flush ----------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["date", "model", "layer", "lookback_days", "max_run_s", "x"]),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)
hostile_bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.integers(1, 200_000).map(lambda d: b"[" * d + b"]" * d),
    st.just(b'{"date": "0001-01-01"}'),
    st.just(b'{"max_run_s": 1e308}'),
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]),
    path=st.sampled_from(["/", "/run", "/record-failure", "/models", "/x", "//", "/%ff"]),
    body=hostile_bodies,
    encoding=st.sampled_from([None, "gzip", "br", "deflate"]),
)
def _etl_property(app: Flask, method: str, path: str, body: bytes, encoding: str | None) -> None:
    if method == "POST" and path in ("/", "/run") and _runs_models(body, encoding):
        return
    headers = {"Content-Encoding": encoding} if encoding else {}
    r = app.test_client().open(path, method=method, data=body, headers=headers)
    assert r.status_code < 500, (r.status_code, r.get_data(as_text=True)[:300])


def _runs_models(body: bytes, encoding: str | None) -> bool:
    if encoding:
        # not readable as identity: refused before anything runs, unless there is nothing to
        # decode (an empty body runs every model whatever its Content-Encoding says)
        return body == b""
    if not body.strip():
        return True  # an empty body runs every model
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return False
    if not isinstance(value, dict):
        return False
    try:
        RunRequest.model_validate(value)
    except ValueError:
        return False
    return True


def test_etl_no_5xx_for_any_request(etl_app: Flask) -> None:
    _etl_property(etl_app)  # type: ignore[call-arg]


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]),
    path=st.sampled_from(["/", "/run", "/flush", "//", "/%ff"]),
    body=hostile_bodies,
    encoding=st.sampled_from([None, "gzip", "br"]),
)
def _flush_property(app: Flask, method: str, path: str, body: bytes, encoding: str | None) -> None:
    if method == "POST" and path == "/" and _runs_flush(body, encoding):
        return  # a real flush run (tests/cdc); this property is about refusals
    headers = {"Content-Encoding": encoding} if encoding else {}
    r = app.test_client().open(path, method=method, data=body, headers=headers)
    assert r.status_code < 500, r.get_data(as_text=True)[:300]


def _runs_flush(body: bytes, encoding: str | None) -> bool:
    if encoding:
        # An empty body is a flush with the defaults whatever its Content-Encoding says (there
        # is nothing to decode). Judged a refusal, it ran a real flush here: a 500 when the
        # emulator had no CDC subscription yet (this test alone, or first on its xdist worker).
        return body == b""
    if not body.strip():
        return True
    try:
        value = json.loads(body)
        cdc_app.FlushRequest.model_validate(value)
    except (ValueError, RecursionError):
        return False
    return True


def test_cdc_flush_no_5xx_for_any_request() -> None:
    _flush_property(cdc_app.create_app(_never))  # type: ignore[call-arg]
