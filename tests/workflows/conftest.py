"""Fixtures for running workflows/daily_etl.yaml in the workflows-emulator against the etl function.

* ``emulator_python``: the isolated venv (``.nox/workflows``) with ``workflows-emulator``, built
  once with uv and reused (it pins fastapi/starlette versions that conflict with
  functions-framework, so it can never share the main venv).
* ``served_etl``: the real ``etl`` Cloud Run entry point served by functions-framework on a
  loopback port over a DuckDB file the test fills first.
* ``FaultProxy``: a loopback HTTP proxy in front of the function that can answer chosen requests
  with an error instead of forwarding them (a 503 from an overloaded instance, as Cloud Run does),
  and records every request: fault injection at the network edge, not in our code.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from edp.settings import get_settings
from edp.warehouse import get_warehouse
from edp.warehouse.port import Warehouse
from edp_tools.local.processes import ManagedProcess, free_port, port_open

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".nox" / "workflows"
EMULATOR = "workflows-emulator==1.10.0"
HARNESS = Path(__file__).parent / "emulator_harness.py"
WORKFLOW = ROOT / "workflows" / "daily_etl.yaml"
EXECUTION_TIMEOUT_S = 120


def _venv_python() -> Path:
    return VENV / "bin" / "python"


def _emulator_importable() -> bool:
    python = _venv_python()
    if not python.exists():
        return False
    probe = subprocess.run(
        [python, "-c", "import workflows_emulator.main, jsonschema"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    return probe.returncode == 0


def ensure_emulator_venv() -> Path:
    """Create ``.nox/workflows`` with the emulator unless it is already there (idempotent)."""
    if _emulator_importable():
        return _venv_python()
    uv = shutil.which("uv")
    if uv:
        subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, VENV], check=True)
        install = [uv, "pip", "install", "--quiet", "--python", _venv_python(), EMULATOR]
    else:
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
        install = [_venv_python(), "-m", "pip", "install", "--quiet", EMULATOR]
    subprocess.run(install, check=True, timeout=600)
    if not _emulator_importable():
        raise RuntimeError(f"{EMULATOR} did not install into {VENV}")
    return _venv_python()


@pytest.fixture(scope="session")
def emulator_python() -> Path:
    return ensure_emulator_venv()


# --- the function, served -----------------------------------------------------------------


@dataclass
class ServedEtl:
    url: str
    db_path: Path
    process: ManagedProcess

    def stop(self) -> None:
        self.process.stop()

    def open_warehouse(self) -> Warehouse:
        """The warehouse, for assertions (stop the server first: DuckDB has one writer)."""
        return get_warehouse(get_settings())


@pytest.fixture
def warehouse_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A DuckDB file with every table; the test fills it, then serves it."""
    db_path = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("EDP_WAREHOUSE", "duckdb")
    monkeypatch.setenv("EDP_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("EDP_DUCKDB_PATH", str(db_path))
    monkeypatch.setenv("EDP_METRICS_EXPORTER", "none")
    get_settings.cache_clear()
    warehouse = get_warehouse(get_settings())
    try:
        warehouse.create_tables()
    finally:
        warehouse.close()
    return db_path


@pytest.fixture
def serve_etl(warehouse_file: Path, tmp_path: Path) -> Iterator[Callable[[], ServedEtl]]:
    started: list[ServedEtl] = []

    def start() -> ServedEtl:
        port = free_port()
        process = ManagedProcess(
            "fn:etl",
            [
                Path(sys.executable).parent / "functions-framework",
                "--source",
                ROOT / "functions" / "main.py",
                "--target",
                "etl",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            log_path=tmp_path / "etl-function.log",
        ).start()
        process.wait_ready(lambda: port_open("127.0.0.1", port), timeout=60)
        served = ServedEtl(f"http://127.0.0.1:{port}", warehouse_file, process)
        started.append(served)
        return served

    yield start
    for served in started:
        served.stop()


# --- fault-injecting proxy ---------------------------------------------------------------------


@dataclass
class Fault:
    """Answer ``status`` instead of forwarding, for the next ``times`` requests that match."""

    matches: Callable[[str, dict[str, Any]], bool]
    status: int
    times: int


@dataclass
class Seen:
    path: str
    body: dict[str, Any]
    status: int
    injected: bool


@dataclass
class FaultProxy:
    target: str
    url: str = ""
    faults: list[Fault] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def requests_for(self, key: str, value: str) -> list[Seen]:
        return [s for s in self.seen if s.body.get(key) == value]


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = json.loads(raw or b"{}")
            with proxy.lock:
                fault = next(
                    (f for f in proxy.faults if f.times > 0 and f.matches(self.path, body)), None
                )
                if fault is not None:
                    fault.times -= 1
            if fault is not None:
                status, payload = fault.status, json.dumps({"error": "injected"}).encode()
            else:
                request = urllib.request.Request(
                    proxy.target + self.path,
                    data=raw,
                    method="POST",
                    headers={"Content-Type": "application/json"},
                )
                try:
                    with urllib.request.urlopen(request, timeout=300) as response:
                        status, payload = response.status, response.read()
                except urllib.error.HTTPError as exc:
                    status, payload = exc.code, exc.read()
            with proxy.lock:
                proxy.seen.append(Seen(self.path, body, status, fault is not None))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler


@pytest.fixture
def fault_proxy() -> Iterator[Callable[[str], FaultProxy]]:
    servers: list[ThreadingHTTPServer] = []

    def start(target: str) -> FaultProxy:
        proxy = FaultProxy(target)
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(proxy))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
        return proxy

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


# --- running the workflow ------------------------------------------------------------------------


def run_workflow(
    python: Path, argument: dict[str, Any] | None, function_url: str, execution_id: str
) -> dict[str, Any]:
    """Execute workflows/daily_etl.yaml in the emulator; its JSON verdict."""
    env = {
        **os.environ,
        "ETL_URL": function_url,
        "ETL_TIME_ZONE": "Asia/Seoul",
        "GOOGLE_CLOUD_WORKFLOW_EXECUTION_ID": execution_id,
    }
    argv = [python, HARNESS, "run", WORKFLOW]
    if argument is not None:
        argv.append(json.dumps(argument))
    done = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=EXECUTION_TIMEOUT_S, check=False
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise AssertionError(f"emulator crashed ({done.returncode}):\n{done.stderr[-4000:]}")
    verdict: dict[str, Any] = json.loads(lines[-1])
    verdict["log"] = done.stderr
    return verdict
