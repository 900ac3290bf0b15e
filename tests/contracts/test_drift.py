"""The drift bar: every derived artefact equals what the build produces from schemas/ now."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from edp_tools.contracts import build
from edp_tools.contracts.build import Drift, check, repo_root


def test_checked_in_artefacts_match_the_sources() -> None:
    drifts = check(repo_root())
    assert drifts == [], "run `edp schemas build`:\n" + "\n".join(map(str, drifts))


def test_a_copy_of_the_tree_is_in_sync(contract_tree: Path) -> None:
    assert check(contract_tree) == []


def _edit_yaml(path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_changing_a_field_type_without_rebuilding_fails_the_check(contract_tree: Path) -> None:
    def retype(data: dict[str, Any]) -> None:
        field = next(f for f in data["fields"] if f["name"] == "session_id")
        field["type"] = "INT64"

    _edit_yaml(contract_tree / "schemas/tables/raw/user_events.yaml", retype)

    drifts = check(contract_tree)

    assert {str(d) for d in drifts} == {
        "changed: functions/edp/contracts/generated/catalog.json",
        "changed: schemas/CATALOG.md",
        "changed: schemas/bigquery/raw/user_events.json",
        "changed: schemas/duckdb/raw.sql",
    }


def test_adding_a_column_without_rebuilding_fails_the_check(contract_tree: Path) -> None:
    def add(data: dict[str, Any]) -> None:
        data["fields"].append({"name": "note", "type": "STRING", "description": "A note."})

    _edit_yaml(contract_tree / "schemas/tables/monitoring/pipeline_runs.yaml", add)

    paths = {d.path.as_posix() for d in check(contract_tree)}
    assert "schemas/bigquery/monitoring/pipeline_runs.json" in paths
    assert "functions/edp/contracts/generated/catalog.json" in paths


def test_changing_the_event_schema_flags_the_models_and_the_packaged_copy(
    contract_tree: Path,
) -> None:
    path = contract_tree / "schemas/events/event.schema.json"
    schema = json.loads(path.read_text())
    schema["$defs"]["Item"]["properties"]["quantity"]["maximum"] = 10
    path.write_text(json.dumps(schema, indent=2))

    assert check(contract_tree) == [
        Drift(Path("functions/edp/contracts/generated/event.schema.json"), "changed"),
        Drift(Path("functions/edp/contracts/generated/event_models.py"), "changed"),
    ]


def test_hand_edited_and_missing_and_stale_outputs_are_all_reported(contract_tree: Path) -> None:
    bq = contract_tree / "schemas/bigquery/raw/user_events.json"
    bq.write_text(bq.read_text().replace('"REQUIRED"', '"NULLABLE"', 1))
    (contract_tree / "schemas/duckdb/mart.sql").unlink()
    (contract_tree / "schemas/bigquery/raw/dropped_table.json").write_text("[]\n")

    assert [str(d) for d in check(contract_tree)] == [
        "stale: schemas/bigquery/raw/dropped_table.json",
        "changed: schemas/bigquery/raw/user_events.json",
        "missing: schemas/duckdb/mart.sql",
    ]


def test_build_repairs_every_drift_and_is_idempotent(contract_tree: Path) -> None:
    (contract_tree / "schemas/duckdb/raw.sql").write_text("-- edited by hand\n")
    (contract_tree / "schemas/bigquery/raw/dropped_table.json").write_text("[]\n")

    first = build.build(contract_tree)

    assert len(first) == 2
    assert check(contract_tree) == []
    assert build.build(contract_tree) == []
    assert not (contract_tree / "schemas/bigquery/raw/dropped_table.json").exists()


def test_module_entry_point_check_exits_1_and_names_the_drifted_files(
    contract_tree: Path,
) -> None:
    path = contract_tree / "schemas/tables/raw/bad_events.yaml"
    path.write_text(path.read_text().replace("Why ingest refused it.", "Why it was refused."))

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "edp_tools.contracts.build",
            "--check",
            "--root",
            str(contract_tree),
        ],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 1
    assert "changed: schemas/bigquery/raw/bad_events.json" in result.stderr
    assert "changed: functions/edp/contracts/generated/catalog.json" in result.stderr


@pytest.mark.parametrize("check_flag", [["--check"], []])
def test_module_entry_point_refuses_an_invalid_catalogue(
    contract_tree: Path, check_flag: list[str]
) -> None:
    path = contract_tree / "schemas/tables/raw/bad_events.yaml"
    path.write_text(path.read_text().replace("[failure_type, source]", "[nope]"))
    path.write_text(path.read_text().replace("Why ingest refused it.", "Changed."))
    catalog = contract_tree / "functions/edp/contracts/generated/catalog.json"
    before = catalog.read_text()

    code = build.main([*check_flag, "--root", str(contract_tree)])

    assert code == 1
    assert catalog.read_text() == before  # nothing is written for an invalid catalogue
