"""Every ``>>>`` example of the job's modules runs (they need apache-beam: the main venv's
doctest discovery covers ``edp`` and ``edp_tools`` only)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import edp_stream_load
import pytest

MODULES = sorted(
    info.name for info in pkgutil.walk_packages(edp_stream_load.__path__, "edp_stream_load.")
)


def test_discovery_sees_the_job() -> None:
    assert {"edp_stream_load.options", "edp_stream_load.flink", "edp_stream_load.sinks"} <= set(
        MODULES
    )


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(
        importlib.import_module(name),
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
        verbose=False,
    )
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
