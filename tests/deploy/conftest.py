"""Fixtures of the deploy-shaped tests: the archive Terraform uploads, installed and served.

- ``deployed_source`` (session): the archive built with Terraform's own rules, extracted.
- ``deployed_python`` (session): a clean venv with ONLY the archive's ``requirements.txt``
  installed (nothing of this checkout, no extras): what Cloud Run's buildpack does. Kept under
  ``.nox/deploy/<hash of requirements.txt>`` and rebuilt when the requirements change.
- ``bq_endpoint`` (session): the BigQuery REST emulator (bqemulator, its own venv).
- ``serve``: starts one entry point with ``functions-framework`` from the extracted archive, with
  the environment Terraform gives that function (evaluated from terraform/), plus only the
  endpoints of the local stand-ins (Pub/Sub emulator, BigQuery emulator, Monitoring API) and the
  secret values Secret Manager would inject.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from edp_tools.local.processes import ManagedProcess, free_port, port_open
from edp_tools.local.pubsub_emulator import PubSubEmulator

from .archive import build_archive
from .terraform_env import function_env

ROOT = Path(__file__).resolve().parents[2]
DEPLOY_VENVS = ROOT / ".nox" / "deploy"
PROJECT = "edp-deploy"
#: What Terraform would be given in terraform.tfvars for this test deployment.
TFVARS = {"project_id": PROJECT, "bigquery_location": "US"}

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="session")
def deployed_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("deploy")
    archive = build_archive(work / "functions.zip")
    source = work / "source"
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(source)
    return source


def _uv() -> str:
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    if not Path(uv).exists():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "uv"], check=True)
        uv = shutil.which("uv") or uv
    return uv


@pytest.fixture(scope="session")
def deployed_python(deployed_source: Path) -> Path:
    requirements = deployed_source / "requirements.txt"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
    venv = DEPLOY_VENVS / digest
    python = venv / "bin" / "python"
    marker = venv / ".complete"
    DEPLOY_VENVS.mkdir(parents=True, exist_ok=True)
    # One build at a time: pytest-xdist workers share .nox/deploy.
    with open(DEPLOY_VENVS / f".{digest}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not marker.exists():
            _build_deploy_venv(venv, requirements)
    return python


def _build_deploy_venv(venv: Path, requirements: Path) -> None:
    """A clean venv with only ``requirements`` installed; ``.complete`` written last."""
    python = venv / "bin" / "python"
    shutil.rmtree(venv, ignore_errors=True)
    uv = _uv()
    subprocess.run([uv, "venv", "-q", "--python", "3.11", str(venv)], check=True)
    try:
        subprocess.run(
            [uv, "pip", "install", "-q", "--python", str(python), "-r", str(requirements)],
            check=True,
            timeout=900,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        shutil.rmtree(venv, ignore_errors=True)
        pytest.fail(f"the archive's requirements.txt does not install: {exc}")
    (venv / ".complete").write_text(requirements.read_text())


@pytest.fixture(scope="session")
def bq_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from warehouse.bqemu import BqEmulator, BqemuUnavailable

    emulator = BqEmulator(log_path=tmp_path_factory.mktemp("bqemu") / "bqemulator.log")
    try:
        emulator.start()
    except BqemuUnavailable as exc:
        pytest.skip(f"bqemulator venv cannot be built here (offline?): {exc}")
    try:
        yield emulator.endpoint
    finally:
        emulator.stop()


ServeFn = Callable[..., "contextmanager[str]"]


@pytest.fixture
def serve(
    deployed_source: Path,
    deployed_python: Path,
    pubsub_emulator: PubSubEmulator,
    tmp_path: Path,
) -> Callable[..., object]:
    """``with serve("ingest", secrets={...}, bq=endpoint) as url:`` — one served entry point."""

    @contextmanager
    def _serve(
        function: str,
        *,
        secrets: dict[str, str] | None = None,
        bq: str | None = None,
        monitoring: str | None = None,
    ) -> Iterator[str]:
        env, secret_env = function_env(function, TFVARS)
        given = secrets or {}
        missing = {name for name, secret in secret_env.items() if secret not in given}
        assert not missing, f"{function} needs secret values for {sorted(missing)}"
        env.update({name: given[secret] for name, secret in secret_env.items()})
        # The stand-ins: nothing here is a production value, only where GCP's APIs are.
        env["PUBSUB_EMULATOR_HOST"] = pubsub_emulator.host
        if bq:
            env["EDP_BIGQUERY_API_ENDPOINT"] = bq
        # A port nothing listens on unless a test runs a Monitoring stand-in: the exporter must
        # never reach Google from a test.
        env["EDP_METRICS_API_ENDPOINT"] = monitoring or f"127.0.0.1:{free_port()}"
        env["EDP_TRACES_API_ENDPOINT"] = f"127.0.0.1:{free_port()}"
        env.update({"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)})
        port = free_port()
        process = ManagedProcess(
            f"fn:{function}",
            [
                str(deployed_python.parent / "functions-framework"),
                "--source",
                "main.py",
                "--target",
                function,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=env,
            cwd=deployed_source,
            log_path=tmp_path / f"{function}.log",
        ).start()
        try:
            process.wait_ready(lambda: port_open("127.0.0.1", port), timeout=60)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.stop()
            log = (tmp_path / f"{function}.log").read_text(errors="replace")
            print(f"--- {function} log ---\n{log[-4000:]}")

    return _serve
