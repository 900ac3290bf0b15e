"""Golden tests: every model against hand-computed results (cases in ``golden/*.yaml``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edp.etl.models import load_models
from edp.settings import get_settings
from edp.warehouse.port import Warehouse

from .golden import GOLDEN, fetch, load_case, mismatches, normalise, play

CASES = sorted(GOLDEN.glob("*.yaml"))


def test_every_model_has_a_golden_case() -> None:
    covered = {f"{p.stem.split('_', 1)[0]}.{p.stem.split('_', 1)[1]}" for p in CASES}
    models = set(load_models())
    assert models <= covered, f"models without a golden case: {sorted(models - covered)}"


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_golden(path: Path, warehouse: Warehouse) -> None:
    case = load_case(path)
    play(case, warehouse, get_settings())
    for table, want in case["expect"].items():
        expected = sorted(want["rows"], key=lambda r: [(v is None, str(normalise(v))) for v in r])
        actual = fetch(warehouse, table, want["columns"])
        problems = mismatches(actual, expected)
        assert not problems, f"{table}:\n" + "\n".join(problems)
