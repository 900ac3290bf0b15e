"""``edp demo --etl calls``: the workflow's calls made by the demo against the served etl function.

A DuckDB file with two generated days, the real ``etl`` entry point served by functions-framework,
then :func:`edp_tools.demo.etl.run_daily_etl`: staging first, every mart after, each recorded in
``monitoring.pipeline_runs`` under the execution id; a call that fails for good is recorded as a
failed run (the workflow's failure path) and raised.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from edp.settings import get_settings
from edp.warehouse import get_warehouse
from edp_tools.demo.etl import EtlCallError, run_daily_etl
from edp_tools.generator import Generator, GeneratorConfig
from edp_tools.generator.sinks import write_warehouse
from edp_tools.local.processes import ManagedProcess, free_port, port_open

DAY = dt.date(2026, 11, 24)


@pytest.fixture
def etl_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("EDP_WAREHOUSE", "duckdb")
    monkeypatch.setenv("EDP_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("EDP_DUCKDB_PATH", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("EDP_ETL_TIMEZONE", "UTC")
    monkeypatch.setenv("EDP_METRICS_EXPORTER", "none")
    get_settings.cache_clear()
    wh = get_warehouse()
    try:
        wh.create_tables()
        gen = Generator(GeneratorConfig(start=DAY - dt.timedelta(days=1), days=2, scale=0.001))
        for day in gen.days():
            write_warehouse(wh, day)
    finally:
        wh.close()
    port = free_port()
    root = Path(__file__).resolve().parents[2]
    proc = ManagedProcess(
        "fn:etl",
        [
            sys.executable,
            "-m",
            "functions_framework",
            "--source",
            str(root / "functions" / "main.py"),
            "--target",
            "etl",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=dict(os.environ),
        log_path=tmp_path / "etl.log",
    ).start()
    try:
        proc.wait_ready(lambda: port_open("127.0.0.1", port), timeout=60)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.stop()


def _runs(execution_id: str) -> list[dict[str, object]]:
    wh = get_warehouse()
    try:
        return [
            dict(r)
            for r in wh.query(
                "SELECT task, status FROM monitoring.pipeline_runs "
                "WHERE started_at >= TIMESTAMP '2000-01-01' AND execution_id = @e ORDER BY task",
                {"e": execution_id},
            ).rows
        ]
    finally:
        wh.close()


def test_calls_run_staging_then_every_mart(etl_url: str) -> None:
    outcome = run_daily_etl(etl_url, DAY, lookback_days=1, execution_id="demo-test-1")
    targets = [c.target for c in outcome.calls]
    assert targets[0] == "staging"
    assert sorted(targets[1:]) == [
        "mart.conversion_funnel",
        "mart.daily_active_users",
        "mart.orders_daily",
        "mart.product_performance",
        "mart.retention_cohorts",
    ]
    assert all(c.status == 200 for c in outcome.calls)
    assert outcome.rows_written > 0
    runs = _runs("demo-test-1")
    assert {r["status"] for r in runs} == {"success"}
    assert {r["task"] for r in runs} >= {"staging.user_events", "mart.daily_active_users"}


def test_a_refused_call_is_recorded_as_failed_and_raised(etl_url: str) -> None:
    with pytest.raises(EtlCallError, match="HTTP 400"):
        run_daily_etl(etl_url, DAY, lookback_days=99, execution_id="demo-test-2")
    # Two rows of one execution, as under Workflows: the function's record of the refused
    # request, and the failure path's record of the execution's failure (both task "staging").
    assert [(r["task"], r["status"]) for r in _runs("demo-test-2")] == [("staging", "failed")] * 2
