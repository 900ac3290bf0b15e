"""The collector's multiprocess metrics (``edp.observability.multiprocess``) against
``prometheus_client``'s own: the same observations made through ``prometheus_client`` directly
(each written at once, the referee) and through our instruments on an event loop (kept, then
written behind) must leave files that its ``MultiProcessCollector`` reads as the same series.

``prometheus_client`` picks its file-backed values when it is imported, from
``PROMETHEUS_MULTIPROC_DIR``; so each recording runs in its own process with its own folder, as a
gunicorn worker would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

# (route, code, seconds): on a bucket bound (0.005), just under it, above the largest bound,
# zero, negative, and a NaN (counted in the sum only, by prometheus_client's observe()).
OBSERVATIONS = [
    ("/v1/events", "200", 0.005),
    ("/v1/events", "200", 0.0049),
    ("/v1/events", "200", 4000.0),
    ("/v1/events", "200", 0.0),
    ("/v1/track", "400", -1.0),
    ("/v1/track", "400", 0.3),
    ("/v1/batch", "503", float("nan")),
]
ADDS = [(("/v1/events", "200"), 1), (("/v1/events", "200"), 3), (("/v1/track", "400"), 2)]

_RECORDER = r"""
import asyncio, json, sys, time
mode = sys.argv[1]
from edp.observability import multiprocess
from edp.observability.metrics import LATENCY_BUCKETS_S
observations = [tuple(o) for o in json.loads(sys.argv[2])]
adds = [(tuple(labels), n) for labels, n in json.loads(sys.argv[3])]
def visible():
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    return generate_latest(registry).decode()
if mode == "reference":
    import prometheus_client
    from edp.observability.catalogue import metric
    h = prometheus_client.Histogram("request_latency_seconds", "m", ["route", "code"],
                                    registry=None, buckets=LATENCY_BUCKETS_S)
    c = prometheus_client.Counter("http_requests", "m", ["route", "code"], registry=None)
    for _ in range(int(sys.argv[4])):
        for route, code, seconds in observations:
            h.labels(route, code).observe(seconds)
        for labels, n in adds:
            c.labels(*labels).inc(n)
    print(json.dumps({}))
    sys.exit(0)
h = multiprocess.Histogram("request_latency_seconds", LATENCY_BUCKETS_S)
c = multiprocess.Counter("http_requests_total")
def record():
    for route, code, seconds in observations:
        h.record(seconds, {"route": route, "code": code})
    for labels, n in adds:
        c.add(n, labels)
if mode == "off_loop":
    record()
    print(json.dumps({"at_once": visible()}))
    sys.exit(0)
if mode == "loop_closed_early":
    async def first():
        record()  # kept; this loop closes before its write is due
    async def second():
        record()
        await asyncio.sleep(multiprocess.FLUSH_AFTER_S + 0.3)
        return visible()
    asyncio.run(first())
    print(json.dumps({"later": asyncio.run(second())}))
    sys.exit(0)
async def main():
    record()
    at_once = visible()
    if mode == "loop_scrape":
        return {"at_once": at_once, "scraped": multiprocess.exposition().decode()}
    await asyncio.sleep(multiprocess.FLUSH_AFTER_S + 0.3)
    return {"at_once": at_once, "later": visible()}
print(json.dumps(asyncio.run(main())))
"""


def _record(mode: str, folder: Path, times: int = 1) -> dict[str, str]:
    folder.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    argv = [mode, json.dumps(OBSERVATIONS), json.dumps(ADDS), str(times)]
    run = subprocess.run(
        [sys.executable, "-c", _RECORDER, *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, str] = json.loads(run.stdout)
    return result


def _read(folder: Path) -> str:
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(folder))  # type: ignore[no-untyped-call]
    return generate_latest(registry).decode()


def _series(text: str) -> list[str]:
    return sorted(line for line in text.splitlines() if line and not line.startswith("#"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    folder = tmp_path_factory.mktemp("reference") / "prometheus"
    _record("reference", folder)
    return _series(_read(folder))


def test_the_referee_says_what_the_observations_are(reference: list[str]) -> None:
    # By hand from OBSERVATIONS: /v1/events 200 has 0.0, 0.0049 and 0.005 at or under 0.005
    # (le is inclusive), 4000 s only in +Inf; /v1/track 400 has -1 in every bucket and 0.3 from
    # 0.5 up; /v1/batch's NaN is in its sum only (observe() puts it in no bucket, and the
    # count is the +Inf bucket's).
    def bucket(code: str, route: str, le: str) -> str:
        return f'request_latency_seconds_bucket{{code="{code}",le="{le}",route="{route}"}}'

    assert f"{bucket('200', '/v1/events', '0.005')} 3.0" in reference
    assert f"{bucket('200', '/v1/events', '0.0025')} 1.0" in reference
    assert f"{bucket('200', '/v1/events', '1800.0')} 3.0" in reference
    assert f"{bucket('200', '/v1/events', '+Inf')} 4.0" in reference
    assert 'request_latency_seconds_sum{code="200",route="/v1/events"} 4000.0099' in reference
    assert f"{bucket('400', '/v1/track', '0.25')} 1.0" in reference
    assert f"{bucket('400', '/v1/track', '0.5')} 2.0" in reference
    assert f"{bucket('503', '/v1/batch', '+Inf')} 0.0" in reference
    assert 'request_latency_seconds_count{code="503",route="/v1/batch"} 0.0' in reference
    assert 'request_latency_seconds_sum{code="503",route="/v1/batch"} NaN' in reference
    assert 'http_requests_total{code="200",route="/v1/events"} 4.0' in reference


def test_kept_on_the_loop_then_written_as_observe_writes(
    reference: list[str], tmp_path: Path
) -> None:
    folder = tmp_path / "prometheus"
    seen = _record("loop", folder)
    assert "request_latency_seconds_bucket" not in seen["at_once"]  # kept, not yet written
    assert "http_requests_total{" not in seen["at_once"]
    assert _series(seen["later"]) == reference  # written within FLUSH_AFTER_S, unflushed
    assert _series(_read(folder)) == reference


def test_a_scrape_served_by_the_worker_writes_its_own_first(
    reference: list[str], tmp_path: Path
) -> None:
    seen = _record("loop_scrape", tmp_path / "prometheus")
    assert "http_requests_total{" not in seen["at_once"]
    assert _series(seen["scraped"]) == reference


def test_off_a_loop_every_increment_is_written_at_once(
    reference: list[str], tmp_path: Path
) -> None:
    seen = _record("off_loop", tmp_path / "prometheus")
    assert _series(seen["at_once"]) == reference


def test_a_loop_closed_before_its_write_does_not_strand_what_it_kept(tmp_path: Path) -> None:
    # The first loop's timer dies with it; the next increment, on a new loop, schedules a
    # write of everything kept, the first loop's too: the referee recorded the same twice.
    twice = tmp_path / "twice"
    _record("reference", twice, times=2)
    seen = _record("loop_closed_early", tmp_path / "prometheus")
    assert _series(seen["later"]) == _series(_read(twice))
