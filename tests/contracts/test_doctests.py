"""The runnable examples in the contracts modules' docstrings stay true."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

from edp.contracts import bigquery, build, catalog, codegen, duckdb_ddl, events


@pytest.mark.parametrize(
    "module", [bigquery, build, catalog, codegen, duckdb_ddl, events], ids=lambda m: m.__name__
)
def test_docstring_examples(module: ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
