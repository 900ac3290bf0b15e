"""The ``warehouse`` fixture: a fresh DuckDB file per test with every catalogue table."""

from __future__ import annotations

from pathlib import Path

from edp.contracts.catalog import load_catalog
from edp.settings import get_settings
from edp.warehouse.port import Warehouse


def test_warehouse_fixture_has_every_table_and_is_fresh(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    assert warehouse.name == "duckdb"
    assert get_settings().duckdb_file == tmp_path / "warehouse.duckdb"
    for table in load_catalog().tables:
        result = warehouse.query(f"SELECT COUNT(*) AS n FROM {table.ref}")
        assert result.scalar() == 0, table.ref
