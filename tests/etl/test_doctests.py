"""The runnable examples in the ETL modules' docstrings stay true."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

from edp.etl import models, runner


@pytest.mark.parametrize("module", [models, runner], ids=lambda m: m.__name__)
def test_docstring_examples(module: ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
