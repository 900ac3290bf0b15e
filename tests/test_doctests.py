"""Every ``>>>`` example in the code is a test.

The modules are discovered, not listed: every module of ``edp`` and ``edp_tools`` and the entry
points in ``functions/main.py``. A docstring example that needs a running service carries
``# doctest: +SKIP`` on each line.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import pkgutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

import edp
import edp_tools


def _modules() -> list[str]:
    names = ["main"]
    for package in (edp, edp_tools):
        names.append(package.__name__)
        names += [
            info.name for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}.")
        ]
    return sorted(names)


MODULES = _modules()
MAIN = Path(__file__).resolve().parents[1] / "functions" / "main.py"


def load_main() -> ModuleType:
    """``functions/main.py`` as Cloud Run loads it: a file, not part of an installed package."""
    if "main" in sys.modules and getattr(sys.modules["main"], "__file__", None) == str(MAIN):
        return sys.modules["main"]
    spec = importlib.util.spec_from_file_location("main", MAIN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["main"] = module
    spec.loader.exec_module(module)
    return module


def test_discovery_sees_both_packages() -> None:
    assert "edp.ingest.core" in MODULES
    assert "edp_tools.cli.main" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = load_main() if name == "main" else importlib.import_module(name)
    result = doctest.testmod(
        module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
