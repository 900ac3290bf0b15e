"""The ingest app as really served: functions-framework entry point, gunicorn on loopback, and a
bus that goes away (a stopped emulator)."""

from __future__ import annotations

import signal
import sys
import threading
import time
import uuid
from pathlib import Path

import orjson
import pytest

from edp.ingest.app import create_app
from edp.ingest.publisher import PubSubPublisher
from edp_tools.local.processes import ManagedProcess, free_port, port_open, wait_until
from edp_tools.local.pubsub_emulator import PubSubEmulator

from .conftest import AUTH, WRITE_KEY, Bus, event, post_events

FUNCTIONS_MAIN = Path(__file__).resolve().parents[2] / "functions" / "main.py"


def _bus_env(bus: Bus) -> dict[str, str]:
    return {
        "PUBSUB_EMULATOR_HOST": bus.emulator.host,
        "GOOGLE_CLOUD_PROJECT": bus.emulator.project,
        "EDP_TOPIC_EVENTS": bus.events_topic,
        "EDP_TOPIC_BAD_EVENTS": bus.bad_topic,
        "EDP_WRITE_KEYS": WRITE_KEY,
        "EDP_ENVIRONMENT": "local",
    }


def test_functions_framework_entry_point(bus: Bus, monkeypatch: pytest.MonkeyPatch) -> None:
    """`functions-framework --target ingest` serves the same app (Cloud Run path): an async
    function, so the framework builds its Starlette (ASGI) app for it."""
    import functions_framework
    from starlette.testclient import TestClient

    from edp.ingest.asgi import cached_app as cached_asgi_app

    for key, value in _bus_env(bus).items():
        monkeypatch.setenv(key, value)
    cached_asgi_app.cache_clear()
    try:
        app = functions_framework.create_app("ingest", str(FUNCTIONS_MAIN))
        with TestClient(app) as client:
            r = client.post("/v1/events", content=orjson.dumps([event(), event()]), headers=AUTH)
            assert r.status_code == 200, r.content
            assert client.get("/healthz").status_code == 200
            refused = client.post("/v1/events", content=b"{}", headers={"X-Write-Key": "x"})
            assert refused.status_code == 401
    finally:
        cached_asgi_app.cache_clear()
    assert len(bus.events()) == 2


@pytest.mark.slow
def test_gunicorn_serves_and_shuts_down_gracefully(bus: Bus, tmp_path: Path) -> None:
    """Real HTTP over loopback under the deployed gunicorn config; SIGTERM mid-load loses no
    acknowledged event and the worker closes its publisher."""
    import os

    port = free_port()
    log = tmp_path / "gunicorn.log"
    proc = ManagedProcess(
        "test:ingest-gunicorn",
        [sys.executable, "-m", "gunicorn", "-c", "python:edp.ingest.gunicorn_conf",
         "-b", f"127.0.0.1:{port}", "-w", "1", "edp.ingest.asgi:app"],
        env={**os.environ, **_bus_env(bus)},
        log_path=log,
    ).start()  # fmt: skip
    try:
        proc.wait_ready(lambda: port_open("127.0.0.1", port), timeout=60)
        ids: list[str] = []
        acknowledged: list[str] = []
        lock = threading.Lock()

        def client(n: int) -> None:
            for _ in range(n):
                event_id = str(uuid.uuid4())
                try:
                    status = post_events(port, orjson.dumps(event(event_id=event_id)))
                except OSError:
                    return  # the server stopped accepting: fine, never acknowledged
                with lock:
                    ids.append(event_id)
                    if status == 200:
                        acknowledged.append(event_id)
                assert status in (200, 503)

        threads = [threading.Thread(target=client, args=(200,)) for _ in range(4)]
        for t in threads:
            t.start()
        wait_until(lambda: len(acknowledged) >= 50, timeout=30, what="50 acknowledged events")
        assert proc.pgid is not None
        os.killpg(proc.pgid, signal.SIGTERM)
        for t in threads:
            t.join(timeout=30)
        wait_until(lambda: not proc.running, timeout=30, what="gunicorn to exit")
    finally:
        proc.stop()
    published = {e["event_id"] for e in bus.events()}
    assert set(acknowledged) <= published
    assert "publisher flushed and closed" in log.read_text()


@pytest.mark.slow
def test_stopped_bus_gives_503_and_not_ready(tmp_path: Path) -> None:
    """Publishing to an emulator that went away: 503 + Retry-After, /readyz 503, no 5xx else."""
    emulator = PubSubEmulator("edp-test-503", log_path=tmp_path / "emulator.log").start()
    publisher = PubSubPublisher(emulator.project, emulator_host=emulator.host, timeout_s=1.0)
    try:
        from edp.bus.clients import build_publisher
        from edp.settings import Settings

        admin = build_publisher(emulator_host=emulator.host)
        for topic in ("events", "events-bad"):
            admin.create_topic(name=f"projects/{emulator.project}/topics/{topic}")
        settings = Settings(
            _env_file=None, project=emulator.project, pubsub_emulator_host=emulator.host,
            write_keys=WRITE_KEY,
        )  # fmt: skip
        client = create_app(settings, publisher).test_client()
        body = orjson.dumps(event())
        assert client.post("/v1/events", data=body, headers=AUTH).status_code == 200
        assert client.get("/readyz").status_code == 200
        emulator.stop()
        time.sleep(1.1)  # let the readiness cache expire
        r = client.post("/v1/events", data=body, headers=AUTH)
        assert r.status_code == 503
        assert r.headers["Retry-After"] and r.json["reason"]
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json["reason"]
        # client errors are still client errors while the bus is down
        assert client.post("/v1/events", data=b"{", headers=AUTH).status_code == 400
    finally:
        publisher.close()
        emulator.stop()
