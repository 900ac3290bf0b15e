"""The BigQuery emulator for the warehouse contract suite: ``bqemulator`` 1.4.0 in its own venv.

``bqemulator`` (a DuckDB-backed BigQuery REST emulator) pins ``sqlglot < 30.12`` while the
platform pins 30.30, so it lives in ``.nox/bqemu`` (built with uv on first use, rebuilt when
the pins below change) and runs as a **server subprocess**; our BigQuery adapter in the main
venv talks to it over REST (``EDP_BIGQUERY_API_ENDPOINT``). Because the emulator never runs
inside our pytest, its pytest plugin is never loaded (no ``-p no:bqemulator`` needed).

What it needs to start offline (measured): ``duckdb==1.5.5`` with the
``duckdb-extension-spatial==1.5.5`` wheel's extension copied into DuckDB's per-user extension
folder for v1.5.5 (the emulator runs ``INSTALL spatial; LOAD spatial`` at start and refuses to
start without it; we point ``HOME`` at ``.nox/bqemu/home`` so nothing is written to the real
home), an explicit numpy, and ``BQEMU_ENABLE_FORMAT_EXTENSIONS=false`` (no avro download).

    python tests/warehouse/bqemu.py            # ensure the venv, print its bqemulator path
    python tests/warehouse/bqemu.py --serve    # ensure it, then serve on 127.0.0.1:9050
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

from edp_tools.local.processes import ManagedProcess, free_port

REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".nox" / "bqemu"
DUCKDB_VERSION = "1.5.5"
REQUIREMENTS = (
    "bqemulator==1.4.0",
    f"duckdb=={DUCKDB_VERSION}",
    f"duckdb-extension-spatial=={DUCKDB_VERSION}",
    "numpy>=1.26",
    "sqlglot>=30.9,<30.12",
)
_MARKER = ".edp-requirements-sha256"
PROJECT = "edp-contract"


class BqemuUnavailable(RuntimeError):
    """The emulator venv cannot be built here (no uv, no package index)."""


def _fingerprint() -> str:
    return hashlib.sha256(json.dumps(REQUIREMENTS).encode()).hexdigest()


def bqemulator_bin() -> Path:
    return VENV / "bin" / "bqemulator"


def home_dir() -> Path:
    """The HOME the emulator runs with (holds DuckDB's per-user extension folder)."""
    return VENV / "home"


def is_current() -> bool:
    marker = VENV / _MARKER
    return bqemulator_bin().exists() and marker.exists() and marker.read_text() == _fingerprint()


def _install_spatial(python: Path) -> None:
    out = subprocess.run(
        [
            str(python),
            "-c",
            "import duckdb_extension_spatial, pathlib; "
            "print(pathlib.Path(duckdb_extension_spatial.__file__).parent)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    package = Path(out.stdout.strip())
    found = sorted(package.glob(f"extensions/v{DUCKDB_VERSION}/spatial.duckdb_extension"))
    if not found:
        raise BqemuUnavailable(f"no spatial extension for DuckDB v{DUCKDB_VERSION} in {package}")
    target = home_dir() / ".duckdb" / "extensions" / f"v{DUCKDB_VERSION}" / "linux_amd64"
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(found[0], target / "spatial.duckdb_extension")


def ensure(timeout: float = 900) -> Path:
    """The emulator's console script, building ``.nox/bqemu`` first if needed.

    Safe to call from several processes at once (a file lock serialises the build).

    Raises:
        BqemuUnavailable: uv is missing or the packages cannot be installed (offline).
    """
    if is_current():
        return bqemulator_bin()
    uv = shutil.which("uv")
    if uv is None:
        raise BqemuUnavailable("uv is needed to build the bqemulator venv")
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(VENV.parent / ".bqemu.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_current():
            return bqemulator_bin()
        python = VENV / "bin" / "python"
        try:
            if not python.exists():
                subprocess.run(
                    [uv, "venv", "--quiet", "--python", sys.executable, str(VENV)],
                    check=True,
                    capture_output=True,
                    timeout=timeout,
                )
            subprocess.run(
                [uv, "pip", "install", "--quiet", "--python", str(python), *REQUIREMENTS],
                check=True,
                capture_output=True,
                timeout=timeout,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            stderr = getattr(exc, "stderr", b"") or b""
            raise BqemuUnavailable(
                f"cannot build {VENV}: {stderr.decode(errors='replace')[-500:]}"
            ) from exc
        try:
            _install_spatial(python)
        except (subprocess.CalledProcessError, OSError) as exc:
            raise BqemuUnavailable(f"cannot install the spatial extension: {exc}") from exc
        (VENV / _MARKER).write_text(_fingerprint())
    return bqemulator_bin()


def _healthy(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/healthz", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


class BqEmulator:
    """A running emulator (ephemeral, in-memory) on free ports, in its own process group."""

    def __init__(self, log_path: Path | None = None, rest_port: int | None = None) -> None:
        self.rest_port = rest_port or free_port()
        self.grpc_port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.rest_port}"
        self.project = PROJECT
        self._log_path = log_path
        self._process: ManagedProcess | None = None

    def start(self, timeout: float = 60) -> BqEmulator:
        binary = ensure()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home_dir()),
            "BQEMU_ENABLE_FORMAT_EXTENSIONS": "false",
            "BQEMU_LOG_LEVEL": "warning",
        }
        self._process = ManagedProcess(
            "bqemulator",
            [
                binary,
                "start",
                "--rest-host",
                "127.0.0.1",
                "--rest-port",
                str(self.rest_port),
                "--grpc-host",
                "127.0.0.1",
                "--grpc-port",
                str(self.grpc_port),
                "--ephemeral",
                "--project",
                self.project,
            ],
            env=env,
            log_path=self._log_path,
        ).start()
        self._process.wait_ready(lambda: _healthy(self.endpoint), timeout=timeout)
        return self

    def log_tail(self) -> str:
        return self._process.log_tail() if self._process is not None else ""

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()
            self._process = None

    def __enter__(self) -> BqEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    if "--serve" in sys.argv:
        with BqEmulator(rest_port=9050) as emulator:
            print(f"bqemulator on {emulator.endpoint} (project {emulator.project}); Ctrl-C stops")
            try:
                while True:
                    import time

                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
    else:
        print(ensure())
