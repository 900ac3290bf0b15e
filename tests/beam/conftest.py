"""Beam tests run in the Beam venv (``.nox/beam``; apache-beam cannot share the main venv).

In the main venv only ``test_beam_suite.py`` is collected: it runs this folder's tests with the
Beam venv's pytest in a subprocess, so the README's test command covers them too.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BEAM_DIR = Path(__file__).resolve().parents[2] / "beam"

HAVE_BEAM = importlib.util.find_spec("apache_beam") is not None

if HAVE_BEAM:
    sys.path.insert(0, str(BEAM_DIR))
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # expansion_standin
    collect_ignore = ["test_beam_suite.py"]
else:
    collect_ignore = [
        p.name for p in Path(__file__).parent.glob("test_*.py") if p.name != "test_beam_suite.py"
    ]
