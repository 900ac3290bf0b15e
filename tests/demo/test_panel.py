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


def test_a_ctrl_c_swallowed_inside_a_phase_still_stops_the_run_when_the_phase_ends() -> None:
    # e.g. DuckDB turned the SIGINT into a query error that a worker handled and went on
    from io import StringIO

    from rich.console import Console

    from edp_tools.demo.panel import Phases

    phases = Phases(Console(file=StringIO()))
    with phases("first"):
        phases.console.print("work of the first phase")
    with pytest.raises(KeyboardInterrupt), phases("second"):
        phases.interrupted = True  # what the run's SIGINT handler sets
    assert "second" not in phases.seconds
    with pytest.raises(KeyboardInterrupt), phases("third"):
        raise AssertionError("a phase must not start after Ctrl-C")
