"""``edp etl`` through typer's CliRunner against a DuckDB file warehouse."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from edp.settings import get_settings
from edp.warehouse import get_warehouse
from edp_tools.cli.main import app

from .golden import GOLDEN, load_case, play


@pytest.fixture
def filled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EDP_WAREHOUSE", "duckdb")
    monkeypatch.setenv("EDP_DUCKDB_PATH", str(tmp_path / "w.duckdb"))
    monkeypatch.setenv("EDP_METRICS_EXPORTER", "none")
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    warehouse = get_warehouse(get_settings())
    try:
        warehouse.create_tables()
        case = load_case(GOLDEN / "staging_user_events.yaml")
        play({"steps": [s for s in case["steps"] if "insert" in s]}, warehouse, get_settings())
    finally:
        warehouse.close()
    return tmp_path / "w.duckdb"


def runs_in(path: Path) -> list[tuple[str, str]]:
    get_settings.cache_clear()
    warehouse = get_warehouse(get_settings())
    try:
        rows = warehouse.query(
            "SELECT CAST(run_date AS STRING) AS d, task FROM monitoring.pipeline_runs "
            "WHERE started_at IS NOT NULL AND status = 'success'"
        ).rows
    finally:
        warehouse.close()
    return sorted((r["d"], r["task"]) for r in rows)


def test_backfill_a_range_for_one_model(filled: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "etl",
            "run",
            "--date",
            "2026-11-20",
            "--to",
            "2026-11-21",
            "--model",
            "staging.user_events",
            "--lookback",
            "0",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "staging.user_events" in result.output and "ok" in result.output
    assert runs_in(filled) == [
        ("2026-11-20", "staging.user_events"),
        ("2026-11-21", "staging.user_events"),
    ]


def test_a_layer(filled: Path) -> None:
    result = CliRunner().invoke(app, ["etl", "run", "--date", "2026-11-21", "--layer", "staging"])
    assert result.exit_code == 0, result.output
    assert [task for _, task in runs_in(filled)] == [
        "staging.user_events",
        "staging.user_first_seen",
        "staging.user_identities",
    ]


@pytest.mark.parametrize(
    "argv",
    [
        ["--date", "2026-11-21", "--to", "2026-11-20"],
        ["--date", "2026-11-21", "--model", "mart.nope"],
        ["--date", "2026-11-21", "--model", "mart.orders_daily", "--layer", "mart"],
        ["--date", "21/11/2026"],
    ],
)
def test_bad_arguments_exit_2_and_run_nothing(filled: Path, argv: list[str]) -> None:
    result = CliRunner().invoke(app, ["etl", "run", *argv])
    assert result.exit_code == 2, result.output
    assert runs_in(filled) == []


def test_a_failing_model_exits_1_with_the_error(filled: Path) -> None:
    warehouse = get_warehouse(get_settings())
    try:
        warehouse.execute_script("DROP TABLE staging.orders")
    finally:
        warehouse.close()
    result = CliRunner().invoke(
        app, ["etl", "run", "--date", "2026-11-21", "--model", "mart.orders_daily"]
    )
    assert result.exit_code == 1
    assert "failed" in result.output and "mart.orders_daily" in result.output


def test_models_lists_the_run_order() -> None:
    result = CliRunner().invoke(app, ["etl", "models"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert result.output.index("staging.user_events") < result.output.index("mart.orders_daily")
