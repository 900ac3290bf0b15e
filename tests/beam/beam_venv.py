"""The Beam venv: ``.nox/beam`` with ``-e '.[local,beam,dev]'``, created with uv when missing.

apache-beam[gcp] drags protobuf and google-cloud-aiplatform down a major version, so it never
goes into the main ``.venv``. This helper makes the Beam venv reproducible from the repo alone
(a fresh clone, CI): it is (re)built when absent or when ``pyproject.toml`` changed since.

    python tests/beam/beam_venv.py            # ensure the venv, print its python
    python tests/beam/beam_venv.py --pytest   # ensure it, then run tests/beam with it
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".nox" / "beam"
EXTRAS = ".[local,beam,dev]"
_MARKER = ".edp-pyproject-sha256"


def venv_python() -> Path:
    return VENV / "bin" / "python"


def _fingerprint() -> str:
    return hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()


def is_current() -> bool:
    marker = VENV / _MARKER
    return venv_python().exists() and marker.exists() and marker.read_text() == _fingerprint()


def ensure() -> Path:
    """The Beam venv's python, building the venv first if needed (needs ``uv`` and PyPI)."""
    if is_current():
        return venv_python()
    uv = shutil.which("uv")
    if uv is None:
        raise RuntimeError("uv is needed to build the Beam venv (pip install uv)")
    if not venv_python().exists():
        subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(VENV)], check=True)
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", str(venv_python()), "-e", EXTRAS],
        cwd=REPO,
        check=True,
    )
    (VENV / _MARKER).write_text(_fingerprint())
    return venv_python()


def run_pytest(
    extra: list[str] | None = None, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """Run ``tests/beam`` with the Beam venv's pytest (a clean environment for its fixtures)."""
    python = ensure()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PUBSUB_", "EDP_"))}
    env.pop("GOOGLE_CLOUD_PROJECT", None)
    return subprocess.run(
        [str(python), "-m", "pytest", "tests/beam", "-p", "no:cacheprovider", "-q", *(extra or [])],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


if __name__ == "__main__":
    if "--pytest" in sys.argv:
        args = [a for a in sys.argv[1:] if a != "--pytest"]
        python = ensure()
        os.execv(
            str(python),
            [str(python), "-m", "pytest", "tests/beam", "-p", "no:cacheprovider", *args],
        )
    print(ensure())
