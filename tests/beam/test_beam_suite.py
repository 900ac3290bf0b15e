"""Run the Beam tests (TestStream, options, the emulator integration run) in the Beam venv.

Collected only in the main venv (see conftest.py). It builds ``.nox/beam`` with uv when it is
missing (a fresh clone, CI), then runs ``tests/beam`` with that venv's pytest and fails with its
output when any Beam test fails - so the README's one test command covers the Beam job.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import beam_venv


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_beam_suite_passes_in_the_beam_venv() -> None:
    result = beam_venv.run_pytest(timeout=1100)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-8000:]
    summary = re.search(r"(\d+) passed", output)
    assert summary is not None and int(summary.group(1)) >= 20, output[-3000:]
