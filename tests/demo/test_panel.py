"""The live panel's Ctrl-C handling: an interrupted DuckDB query stops the demo as Ctrl-C."""

from __future__ import annotations

import duckdb
import pytest

from edp.errors import EdpError, WarehouseError
from edp_tools.demo.panel import _ctrl_c_stays_ctrl_c


def test_an_interrupted_query_is_ctrl_c() -> None:
    with pytest.raises(KeyboardInterrupt), _ctrl_c_stays_ctrl_c():
        raise RuntimeError("Query interrupted")


def test_a_wrapped_duckdb_interrupt_is_ctrl_c() -> None:
    with pytest.raises(KeyboardInterrupt), _ctrl_c_stays_ctrl_c():
        try:
            raise duckdb.InterruptException("INTERRUPT Error: Interrupted!")
        except duckdb.Error as exc:
            raise WarehouseError("query failed") from exc


def test_other_errors_pass_through_unchanged() -> None:
    with pytest.raises(RuntimeError, match="boom"), _ctrl_c_stays_ctrl_c():
        raise RuntimeError("boom")
    with pytest.raises(WarehouseError), _ctrl_c_stays_ctrl_c():
        try:
            raise duckdb.CatalogException("no such table")
        except duckdb.Error as exc:
            raise WarehouseError("query failed") from exc
    with pytest.raises(EdpError), _ctrl_c_stays_ctrl_c():
        raise EdpError("no cause")
