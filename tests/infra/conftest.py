"""Fixtures of the infrastructure static checks.

checkov and kubernetes-validate live in their own venv (``.nox/infra``): checkov pins dozens of
packages that would fight the platform's own. The venv is built once with uv and reused.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INFRA_VENV = ROOT / ".nox" / "infra"
INFRA_REQUIREMENTS = ("checkov==3.3.30", "kubernetes-validate==1.37.0")


def _ensure_infra_venv() -> Path:
    bindir = INFRA_VENV / "bin"
    if (bindir / "checkov").exists() and (bindir / "kubernetes-validate").exists():
        return bindir
    uv = shutil.which("uv")
    if uv is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "uv"], check=True)
        uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    subprocess.run([uv, "venv", "-q", "--python", "3.11", str(INFRA_VENV)], check=True)
    subprocess.run(
        [uv, "pip", "install", "-q", "--python", str(bindir / "python"), *INFRA_REQUIREMENTS],
        check=True,
    )
    return bindir


@pytest.fixture(scope="session")
def infra_bin() -> Path:
    """bin/ of the venv holding checkov and kubernetes-validate."""
    return _ensure_infra_venv()


@pytest.fixture(scope="session")
def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        pytest.skip("kubectl (for `kubectl kustomize`) is not installed on this machine")
    return path


@pytest.fixture(scope="session")
def rendered_overlays(kubectl: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each gke/overlays/<env> rendered by kustomize to one YAML file."""
    out = tmp_path_factory.mktemp("rendered")
    rendered = {}
    for overlay in sorted((ROOT / "gke" / "overlays").iterdir()):
        text = subprocess.run(
            [kubectl, "kustomize", str(overlay)], check=True, capture_output=True, text=True
        ).stdout
        path = out / f"{overlay.name}.yaml"
        path.write_text(text, encoding="utf-8")
        rendered[overlay.name] = path
    return rendered
