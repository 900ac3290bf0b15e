"""``edp sql review`` through typer's runner: output, CI exit codes, SARIF, stdin."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edp_tools.cli.main import app

RUNNER = CliRunner()
COSTLY = "SELECT event_id\nFROM raw.user_events\nWHERE DATE(event_timestamp) = '2026-12-01'\n"


@pytest.fixture(autouse=True)
def _no_local_warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDP_STATE_DIR", str(tmp_path / "state"))  # no DuckDB file: unpriced


def test_findings_are_listed_with_location(tmp_path: Path) -> None:
    sql = tmp_path / "q.sql"
    sql.write_text("SELECT a\nFROM t\nORDER BY a\n")
    result = RUNNER.invoke(app, ["sql", "review", str(sql)])
    assert result.exit_code == 0
    assert f"{sql}:3:1: info OrderByWithoutLimit: ORDER BY clause without LIMIT at line 3." in (
        result.output
    )


def test_ci_mode_fails_on_error_level_findings(tmp_path: Path) -> None:
    sql = tmp_path / "costly.sql"
    sql.write_text(COSTLY)
    assert RUNNER.invoke(app, ["sql", "review", str(sql)]).exit_code == 0
    result = RUNNER.invoke(app, ["sql", "review", str(sql), "--ci"])
    assert result.exit_code == 1
    assert "error PartitionFilterDefeated" in result.output


def test_sarif_annotations(tmp_path: Path) -> None:
    sql = tmp_path / "costly.sql"
    sql.write_text(COSTLY)
    out = tmp_path / "review.sarif"
    RUNNER.invoke(app, ["sql", "review", str(sql), "--sarif", str(out)])
    log = json.loads(out.read_text())
    assert log["version"] == "2.1.0"
    (result,) = log["runs"][0]["results"]
    assert result["ruleId"] == "PartitionFilterDefeated"
    assert result["level"] == "error"
    region = result["locations"][0]["physicalLocation"]["region"]
    assert (region["startLine"], region["startColumn"]) == (3, 7)
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    assert rules[result["ruleIndex"]]["id"] == "PartitionFilterDefeated"


def test_stdin_and_parse_errors() -> None:
    ok = RUNNER.invoke(app, ["sql", "review", "-"], input="SELECT 1")
    assert ok.exit_code == 0 and "0 finding(s) in 1 file(s)" in ok.output
    bad = RUNNER.invoke(app, ["sql", "review", "-"], input="SELEC FROM")
    assert bad.exit_code == 2


def test_the_repository_models_pass_ci_mode() -> None:
    models = Path(__file__).resolve().parents[2] / "functions" / "edp" / "etl" / "models"
    result = RUNNER.invoke(app, ["sql", "review", str(models), "--ci"])
    assert result.exit_code == 0, result.output
