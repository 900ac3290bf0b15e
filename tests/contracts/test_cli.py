"""``edp schemas``: the typer sub-app over the build (exit codes and messages)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from edp_tools.cli.schemas import app

runner = CliRunner()


def test_check_passes_on_a_clean_tree(contract_tree: Path) -> None:
    result = runner.invoke(app, ["check", "--root", str(contract_tree)])
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output


def test_check_fails_on_drift_and_build_fixes_it(contract_tree: Path) -> None:
    path = contract_tree / "schemas/tables/monitoring/pipeline_runs.yaml"
    path.write_text(path.read_text().replace("Pipeline name, e.g. daily_etl.", "Pipeline."))

    failed = runner.invoke(app, ["check", "--root", str(contract_tree)])
    built = runner.invoke(app, ["build", "--root", str(contract_tree)])
    again = runner.invoke(app, ["check", "--root", str(contract_tree)])

    assert failed.exit_code == 1
    assert "changed: schemas/bigquery/monitoring/pipeline_runs.json" in failed.output
    assert built.exit_code == 0
    assert "wrote changed: schemas/bigquery/monitoring/pipeline_runs.json" in built.output
    assert again.exit_code == 0


def test_build_reports_an_invalid_table_and_exits_1(contract_tree: Path) -> None:
    path = contract_tree / "schemas/tables/raw/user_events.yaml"
    path.write_text(path.read_text().replace("field: event_timestamp", "field: event_ts"))

    result = runner.invoke(app, ["build", "--root", str(contract_tree)])

    assert result.exit_code == 1
    assert "raw.user_events: partition field 'event_ts' is not a column" in result.output


def test_tables_and_ddl() -> None:
    tables = runner.invoke(app, ["tables"])
    ddl = runner.invoke(app, ["ddl", "raw.user_events"])
    unknown = runner.invoke(app, ["ddl", "raw.nope"])

    assert tables.exit_code == 0
    assert "raw.user_events" in tables.output
    assert "DAY(event_timestamp)" in tables.output
    assert ddl.exit_code == 0
    assert ddl.output.startswith('CREATE TABLE IF NOT EXISTS "raw"."user_events"')
    assert unknown.exit_code == 1
