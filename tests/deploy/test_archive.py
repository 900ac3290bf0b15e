"""The archive Terraform uploads holds the production code and nothing else."""

from __future__ import annotations

import subprocess
from pathlib import Path

from .archive import archive_members, archive_rules, build_archive

ROOT = Path(__file__).resolve().parents[2]


def _tracked_production_files() -> set[str]:
    """What git tracks under functions/, minus the tooling package."""
    out = subprocess.run(
        ["git", "ls-files", "functions"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.split()
    return {p.removeprefix("functions/") for p in out if not p.startswith("functions/edp_tools/")}


def test_archive_holds_exactly_main_requirements_and_the_edp_package() -> None:
    source, excludes = archive_rules()
    assert source == ROOT / "functions"
    members = set(archive_members(source, excludes))
    assert {"main.py", "requirements.txt"} <= members
    assert all(m in {"main.py", "requirements.txt"} or m.startswith("edp/") for m in members)
    # every tracked production file ships (package data too: catalog, SQL models, OpenAPI)
    tracked = _tracked_production_files()
    assert tracked - members == set()
    # and nothing untracked sneaks in (bytecode, egg-info, editor files)
    assert members - tracked == set()


def test_archive_keeps_the_runtime_data_files(tmp_path: Path) -> None:
    import zipfile

    names = set(zipfile.ZipFile(build_archive(tmp_path / "f.zip")).namelist())
    assert "edp/contracts/generated/catalog.json" in names
    assert "edp/ingest/openapi.json" in names
    assert any(n.startswith("edp/etl/models/mart/") and n.endswith(".sql") for n in names)
    assert not any(n.startswith("edp_tools/") for n in names)
