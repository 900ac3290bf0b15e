"""The deployed code imports neither the tooling package nor anything its requirements lack."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .boundary import check

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"


def test_deployed_code_imports_only_what_the_archive_installs() -> None:
    violations = check(FUNCTIONS)
    assert not violations, "\n".join(map(str, violations))


@pytest.fixture
def functions_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "functions"
    shutil.copytree(FUNCTIONS / "edp", copy / "edp", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(FUNCTIONS / "main.py", copy / "main.py")
    shutil.copy(FUNCTIONS / "requirements.txt", copy / "requirements.txt")
    return copy


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("from edp_tools.cdc.shop import connect", "edp_tools.cdc.shop"),
        ("import duckdb", "duckdb"),  # the local warehouse engine: a tooling-only dependency
        ("import psycopg2", "psycopg2"),
        ("from .. import settings\nfrom edp_tools import cli", "edp_tools"),
    ],
)
def test_a_deliberate_violation_is_caught(
    functions_copy: Path, statement: str, expected: str
) -> None:
    # A lazy import inside a function body counts as much as a top-level one.
    target = functions_copy / "edp" / "cdc" / "staging.py"
    body = "\n".join(f"    {line}" for line in statement.splitlines())
    target.write_text(target.read_text() + f"\n\ndef _lazy() -> None:\n{body}\n")
    found = {v.imported for v in check(functions_copy)}
    assert expected in found


def test_an_undeclared_requirement_is_caught(functions_copy: Path) -> None:
    requirements = functions_copy / "requirements.txt"
    kept = [line for line in requirements.read_text().splitlines() if "orjson" not in line]
    requirements.write_text("\n".join(kept) + "\n")
    assert any(v.imported == "orjson" for v in check(functions_copy))
