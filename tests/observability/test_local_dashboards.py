"""The dashboards rendered locally: the PromQL subset, the scrape, the page in Chromium.

Expected values are computed by hand from the Prometheus documentation's definitions
(https://prometheus.io/docs/prometheus/latest/querying/functions/): ``rate`` is the per-second
increase over the range, counter resets count from zero; ``histogram_quantile`` interpolates
linearly within the bucket holding the rank q * total (lowest bucket starting at 0).
"""

from __future__ import annotations

import json
import shutil
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from werkzeug.serving import make_server

from edp.bus.clients import build_publisher
from edp.ingest.app import create_app
from edp.ingest.publisher import PubSubPublisher
from edp.settings import Settings
from edp.warehouse.port import Warehouse
from edp_tools.local.processes import wait_until
from edp_tools.local.pubsub_emulator import PubSubEmulator
from edp_tools.observability.dashboards import (
    Scraper,
    load_dashboards,
    render_page,
    serve,
)
from edp_tools.observability.promql import NoLocalSourceError, Store, compile_query, evaluate

from .recording import prometheus_metrics

WRITE_KEY = "dash-write-key"


def _counter_store() -> Store:
    store = Store()
    # 0 -> 30 -> reset -> 10 over 60 s: increase = 30 + 10 = 40, rate = 40 / 60
    for t, v in ((0, 0.0), (20, 30.0), (40, 0.0), (60, 10.0)):
        store.add("c_total", {"k": "a", "job": "x"}, t, v)
    for t, v in ((0, 5.0), (60, 65.0)):
        store.add("c_total", {"k": "b", "job": "x"}, t, v)
    return store


def test_rate_and_increase_count_resets_from_zero() -> None:
    store = _counter_store()
    assert evaluate('increase(c_total{k="a"}[2m])', store, at=60) == {
        (("job", "x"), ("k", "a")): 40.0
    }
    assert evaluate("sum by (k) (rate(c_total[2m]))", store, at=60) == {
        (("k", "a"),): 40 / 60,
        (("k", "b"),): 1.0,
    }
    assert evaluate('sum(rate(c_total{k=~"a|b"}[2m])) * 60', store, at=60) == {
        (): pytest.approx(100.0)
    }


def test_ratio_comparison_or_and_absent() -> None:
    store = _counter_store()
    ratio = 'sum(increase(c_total{k="a"}[2m])) / sum(increase(c_total[2m]))'
    assert evaluate(ratio, store, at=60) == {(): 40 / 100}
    assert evaluate(f"{ratio} > 0.5", store, at=60) == {}
    assert evaluate(f"({ratio} > 0.5) or absent_over_time(missing[5m])", store, at=60) == {(): 1.0}
    assert evaluate("count(max by (k) (c_total) > 50)", store, at=60) == {(): 1.0}


def test_histogram_quantile_interpolates_within_the_bucket() -> None:
    store = Store()
    # 100 observations at t=60 (0 at t=0): 50 <= 0.1 s, 90 <= 0.5 s, 100 <= +Inf
    for le, count in (("0.1", 50.0), ("0.5", 90.0), ("+Inf", 100.0)):
        store.add("d_seconds_bucket", {"le": le}, 0, 0.0)
        store.add("d_seconds_bucket", {"le": le}, 60, count)
    q = "histogram_quantile({q}, sum by (le) (rate(d_seconds_bucket[2m])))"
    # p50: rank 50 is the top of the first bucket -> 0.1; p80: 0.1 + 0.4 * 30/40 = 0.4
    assert evaluate(q.format(q=0.5), store, at=60) == {(): pytest.approx(0.1)}
    assert evaluate(q.format(q=0.8), store, at=60) == {(): pytest.approx(0.4)}
    # p95 lands in +Inf: Prometheus answers the highest finite bound
    assert evaluate(q.format(q=0.95), store, at=60) == {(): pytest.approx(0.5)}


def test_cloud_monitoring_names_map_to_local_ones() -> None:
    store = Store()
    store.add("data_freshness_minutes", {"table": "raw.user_events"}, 10, 3.0)
    query = "max by (table) (workload_googleapis_com:data_freshness_minutes)"
    assert evaluate(query, store, at=20) == {(("table", "raw.user_events"),): 3.0}
    with pytest.raises(NoLocalSourceError):
        compile_query("sum(kubernetes_io:container_restart_count[1h])")


def test_every_dashboard_query_is_renderable_or_a_cloud_metric() -> None:
    names = [d.name for d in load_dashboards()]
    assert len(names) == 8
    for dashboard in load_dashboards():
        for tile in dashboard.tiles:
            for query in tile.queries:
                try:
                    compile_query(query)
                except NoLocalSourceError:
                    continue


@pytest.fixture
def ingest_url(pubsub_emulator: PubSubEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The ingest app over loopback HTTP (Prometheus metrics, as under edp dev)."""
    with prometheus_metrics(monkeypatch):
        yield from _ingest_url(pubsub_emulator)


def _ingest_url(pubsub_emulator: PubSubEmulator) -> Iterator[str]:
    project, host = pubsub_emulator.project, pubsub_emulator.host
    suffix = uuid.uuid4().hex[:8]
    admin = build_publisher(emulator_host=host)
    for topic in (f"events-{suffix}", f"bad-{suffix}"):
        admin.create_topic(name=f"projects/{project}/topics/{topic}")
    settings = Settings(
        _env_file=None, project=project, pubsub_emulator_host=host,
        topic_events=f"events-{suffix}", topic_bad_events=f"bad-{suffix}", write_keys=WRITE_KEY,
    )  # fmt: skip
    publisher = PubSubPublisher(project, emulator_host=host, timeout_s=5.0)
    server = make_server("127.0.0.1", 0, create_app(settings, publisher), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        publisher.close()


def _post_events(url: str, n: int) -> None:
    for _ in range(n):
        body = orjson.dumps({"event_type": "page_view", "anonymous_id": "a",
                             "client_timestamp": "2026-11-26T10:00:00.000Z",
                             "page_location": "https://shop.example/"})  # fmt: skip
        request = urllib.request.Request(
            f"{url}/v1/events", data=body, headers={"X-Write-Key": WRITE_KEY}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200


def test_scraped_ingest_traffic_draws_the_event_throughput_page(
    ingest_url: str, tmp_path: Path
) -> None:
    scraper = Scraper({"ingest": ingest_url}, Store())
    now = time.time()
    _post_events(ingest_url, 2)  # the series exists before the first scrape
    scraper.scrape_once(at=now - 40)
    _post_events(ingest_url, 6)
    scraper.scrape_once(at=now - 20)
    scraper.scrape_once(at=now)
    # 6 more page views over scrapes spanning 40 s: 0.15 / s
    rate = evaluate(
        'sum by (event_type) (rate(events_received_total{result="accepted"}[2m]))',
        scraper.store,
        now,
    )
    assert rate[(("event_type", "page_view"),)] == pytest.approx(6 / 40)

    (dashboard,) = [d for d in load_dashboards() if d.name == "event-throughput"]
    page = render_page(dashboard, scraper.store, now)
    assert page.count('class="tile"') == len(dashboard.tiles)
    server = serve(scraper, 0)
    try:
        port = server.server_address[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/d/event-throughput") as r:
            assert b"Events accepted / s by type (GKE collector)" in r.read()
    finally:
        server.shutdown()
        server.server_close()

    if shutil.which("chromium") is None:
        pytest.fail("Debian's chromium is required (.ci/run installs it: apt-get install chromium)")
    from edp_tools.demo.browser import Chromium

    path = tmp_path / "event-throughput.html"
    path.write_text(page, encoding="utf-8")
    with Chromium() as browser:
        browser.open(path, settle_s=0.2)
        drawn = json.loads(
            browser.evaluate(
                "JSON.stringify([...document.querySelectorAll('section.tile')].map(t => ["
                "t.querySelector('h2').textContent, t.dataset.local,"
                "t.querySelectorAll('polyline.series').length]))"
            )
        )
        assert not browser.errors
    local = {title: lines for title, flag, lines in drawn if flag == "yes"}
    assert local["Events accepted / s by type (GKE collector)"] == 1  # page_view
    assert local["Collector request latency P50 / P95 / P99 (s)"] >= 1
    assert local["Ingest function request latency P99 (s)"] >= 1  # workload_ name, local series


def test_the_edp_dev_component_serves_every_dashboard(
    ingest_url: str, warehouse: Warehouse, tmp_path: Path
) -> None:
    from edp.settings import get_settings
    from edp_tools.local.components.dashboards import Dashboards
    from edp_tools.local.scrape import add_target
    from edp_tools.local.stack import StackContext

    warehouse.close()  # the page opens the file itself, per view
    ctx = StackContext(get_settings(), tmp_path, tmp_path)
    ctx.endpoints.update({"fn:ingest": ingest_url})  # an endpoint is not a scrape target...
    add_target(ctx, "ingest", ingest_url)  # ...a registered one is
    add_target(ctx, "cdc-flush", "http://127.0.0.1:9")  # nothing listens there
    component = Dashboards()
    component.start(ctx)
    try:
        assert component.scraper is not None
        assert component.scraper.targets == {
            "ingest": ingest_url,
            "cdc-flush": "http://127.0.0.1:9",
        }
        wait_until(lambda: "cdc-flush" in component.health().detail.split("failing:")[1],
                   timeout=30, what="the first scrape")  # fmt: skip
        assert component.health().ok  # one target down does not stop the page
        with urllib.request.urlopen(ctx.endpoints["metrics targets"]) as page:
            targets = json.loads(page.read())
        assert targets["ingest"]["up"] and targets["ingest"]["samples"] > 0
        assert targets["ingest"]["url"] == f"{ingest_url}/metrics"
        assert not targets["cdc-flush"]["up"] and targets["cdc-flush"]["error"]
        for dashboard in load_dashboards():
            url = ctx.endpoints["dashboards"] + f"d/{dashboard.name}"
            with urllib.request.urlopen(url) as page:
                text = page.read().decode()
            assert dashboard.title in text
            if dashboard.name == "conversion-funnel":  # its warehouse table, empty so far
                assert "mart.conversion_funnel" in text and "no rows yet" in text
    finally:
        component.stop()
