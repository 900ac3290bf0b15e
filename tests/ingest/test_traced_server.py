"""Ingest's spans as the deployed worker ships them: from its event loop, with no export thread.

The app of ``edp.ingest.asgi`` is served by a real uvicorn on loopback (in a thread of this
process, so its threads can be listed) and publishes to the real emulator; spans go to the file
exporter. Expected by hand: each sampled request (ratio 1) is two spans, its SERVER root
``POST /v1/events`` and the ``<topic> publish`` PRODUCER child, in one trace whose id is the one
the published message's ``traceparent`` carries (W3C: ``00-<trace-id>-<span-id>-<flags>``).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import orjson
import pytest
from tests.asgi_server import serving
from tests.spans import read_spans

from edp.ingest.asgi import create_asgi_app
from edp.observability import span_shipping, tracing
from edp.settings import get_settings
from edp_tools.bench._cloud_trace import TraceStandIn

from .conftest import Bus, event, post_events

pytestmark = pytest.mark.timeout(120)


def test_the_worker_ships_its_spans_from_its_loop(
    bus: Bus, spans_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDP_TRACES_SAMPLE_RATIO", "1")
    get_settings.cache_clear()
    threads_before = {t.name for t in threading.enumerate()}
    with serving(create_asgi_app(bus.settings(metrics_exporter="none"))) as (port, _):
        assert [post_events(port, orjson.dumps(event())) for _ in range(5)] == [200] * 5
        # shipped by the loop's own timer, without a flush from this thread
        deadline = time.monotonic() + span_shipping.SHIP_DELAY_S + 10
        while time.monotonic() < deadline and len(spans_file.read_text().splitlines()) < 10:
            time.sleep(0.05)
        started = {t.name for t in threading.enumerate()} - threads_before
    assert not [name for name in started if name.startswith("OtelBatch")], started
    spans = read_spans(spans_file)
    roots = [s for s in spans if s["name"] == "POST /v1/events"]
    publishes = [s for s in spans if s["name"] == f"{bus.events_topic} publish"]
    assert len(roots) == len(publishes) == 5 and len(spans) == 10
    root_ids = {r["context"]["span_id"] for r in roots}
    assert {p["parent_id"] for p in publishes} == root_ids
    carried = {m.attributes["traceparent"].split("-")[1] for m in bus.event_messages()}
    assert carried == {r["context"]["trace_id"][2:] for r in roots}


def test_the_worker_writes_its_last_spans_to_cloud_trace_before_its_loop_stops(
    bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shutdown, through the real exporter to a loopback Cloud Trace that answers in 0.5 s:
    the spans of the last requests (still waiting their ship delay) are written while the loop
    turns, not left to the interpreter's exit (and a write in flight then is cancelled)."""
    with TraceStandIn(delay_s=0.5) as api:
        monkeypatch.setenv("EDP_TRACES_EXPORTER", "cloud_trace")
        monkeypatch.setenv("EDP_TRACES_API_ENDPOINT", f"127.0.0.1:{api.port}")
        monkeypatch.setenv("EDP_TRACES_SAMPLE_RATIO", "1")
        monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", bus.emulator.project)
        get_settings.cache_clear()
        tracing.reset_for_tests()
        try:
            with serving(create_asgi_app(bus.settings(metrics_exporter="none"))) as (port, _):
                assert [post_events(port, orjson.dumps(event())) for _ in range(3)] == [200] * 3
            # the server has stopped: what its shutdown wrote is all Cloud Trace got
            assert (
                sorted(api.names) == ["POST /v1/events"] * 3 + [f"{bus.events_topic} publish"] * 3
            )
        finally:
            tracing.reset_for_tests()
            get_settings.cache_clear()
