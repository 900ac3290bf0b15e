"""Data-quality checks beside the models: a violation fails the run and is recorded."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from edp.etl.models import MODELS_DIR, load_models
from edp.etl.runner import EtlRunner, ModelRunError
from edp.settings import get_settings
from edp.warehouse.port import Warehouse

from .golden import GOLDEN, load_case, play


def test_a_violated_check_fails_and_records_the_run(tmp_path: Path, warehouse: Warehouse) -> None:
    root = tmp_path / "models"
    (root / "mart").mkdir(parents=True)
    shutil.copy(MODELS_DIR / "mart" / "orders_daily.sql", root / "mart" / "orders_daily.sql")
    (root / "mart" / "orders_daily.checks.sql").write_text(
        "-- check: no_refunds\n"
        "select report_date from mart.orders_daily\n"
        "where report_date between @start and @end and refunded_orders > 0\n",
        encoding="utf-8",
    )
    case = load_case(GOLDEN / "mart_orders_daily.yaml")  # has one refunded order on 11-21
    play({"steps": [s for s in case["steps"] if "insert" in s]}, warehouse, get_settings())
    runner = EtlRunner(warehouse, models=load_models(root), trigger="test")

    with pytest.raises(
        ModelRunError, match=r"check no_refunds of mart\.orders_daily failed"
    ) as err:
        runner.run(dt.date(2026, 11, 21), lookback_days=0)

    assert not err.value.transient  # a data problem: retrying will not help (HTTP 422)
    (row,) = warehouse.query(
        "SELECT status, error FROM monitoring.pipeline_runs WHERE started_at IS NOT NULL"
    ).rows
    assert row["status"] == "failed" and "1 violating rows" in row["error"]


def test_the_shipped_checks_pass_on_every_golden_case(warehouse: Warehouse) -> None:
    # the golden cases run the checks too; here: every model's checks, on one full pipeline run
    for name in ("staging_user_events", "mart_orders_daily"):
        case = load_case(GOLDEN / f"{name}.yaml")
        play({"steps": [s for s in case["steps"] if "insert" in s]}, warehouse, get_settings())
    results = EtlRunner(warehouse, trigger="test").run(dt.date(2026, 11, 21))
    assert [r.status for r in results] == ["success"] * len(load_models())
