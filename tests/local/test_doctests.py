"""The docstring examples of the local-stack, bus and CLI modules run and hold."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "edp.local.processes",
    "edp.local.pubsub_emulator",
    "edp.local.postgres",
    "edp.bus.topology",
    "edp.bus.clients",
    "edp.bus.admin",
    "edp.bus.messages",
    "edp.cli.main",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
