"""Every metric of the catalogue is emitted by a running ``edp dev`` under traffic, as declared.

The real stack (``python -m edp_tools.cli.main dev``, as tests/local/test_dev.py starts it) gets
the traffic that causes each metric, through the same doors production traffic uses: events over
HTTP to ingest (accepted, refused, unauthenticated), a malformed message on the events topic (the
stream loader dead-letters it), an order committed in the shop PostgreSQL (the CDC reader
publishes it, the flush loop writes it), a poison message on a CDC topic (dead-lettered after
its deliveries), an ETL model run and the freshness probe through the ``etl`` function, and a
quality run through the ``quality_check`` function whose volume check has two weeks of
same-hour history, so it scores (and fails) the hour and opens an incident: a Slack post to the
local receiver and a report call to Vertex AI. There is no Vertex AI on a laptop: the real
client is pointed at a port nobody listens on, so the call is made, timed and counted
(``result=error``) and the offline analyst writes the report, as in GCP when Vertex fails.
``sql_review`` owns no catalogue metric; its endpoint is scraped like the others.

Then every ``/metrics`` endpoint the dashboards page scrapes (its ``/targets``) is read, and
each catalogue metric must be there under its own name (histograms as ``_bucket``, ``_count``
and ``_sum``) with exactly its declared label names (plus OpenTelemetry's ``otel_scope_*``
and the histogram's ``le``). No metric is skipped. The dashboards page must show the scraped
series, and a CDC change and an event must each be one trace (W3C ``traceparent`` across
Pub/Sub; a consumer batch links to its messages' producer spans).
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from tests.dev_stack import wait_dev_ready

from edp.bus.clients import get_subscriber, subscription_path
from edp.bus.messages import Message, publish_all
from edp.contracts.catalog import load_catalog
from edp.observability.catalogue import METRICS, MetricSpec
from edp.quality.volume import scored_window
from edp.settings import Settings
from edp_tools.local.processes import free_port, wait_until

WRITE_KEY = "dev-metrics-key"
PROJECT = "edp-dev-metrics"
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")
#: Labels the OpenTelemetry Prometheus exporter adds to every series (instrumentation scope).
SCOPE_LABELS = {"otel_scope_name", "otel_scope_version", "otel_scope_schema_url"}
#: Every process the stack scrapes (job names of /targets).
JOBS = {
    "ingest", "cdc_flush", "etl", "quality_check", "sql_review",
    "stream-loader", "cdc-reader", "cdc-flush",
}  # fmt: skip
#: Tiles that must show local data once the traffic ran (dashboard -> tile titles): each reads
#: a metric of a different process (quality_check, the CDC flush loop, etl).
TILES = {
    "quality-checks": ["Null rate of key columns", "Volume z-score by table (|z| > 2 fails)"],
    "ai-quality-reports": ["LLM report calls / h by result", "Slack notifications / h by channel"],
    "cdc-lag": ["Rows flushed / s by table", "Dead-lettered / h by error"],
    "pipeline-status": ["Rows written / h by ETL task", "Raw data freshness by table (minutes)"],
    "bigquery-cost": ["Bytes processed / day by ETL task"],
}


@pytest.fixture(scope="module")
def stack() -> Iterator[dict[str, Any]]:
    """``edp dev`` on free ports with its own state folder; stopped with Ctrl-C at the end."""
    folder = Path(tempfile.mkdtemp(prefix="edp-dev-metrics-"))
    state = folder / "state"
    env = {
        **os.environ,
        "EDP_STATE_DIR": str(state),
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "EDP_WRITE_KEYS": WRITE_KEY,
        "EDP_METRICS_EXPORTER": "prometheus",
        "EDP_TRACES_EXPORTER": "file",
        "EDP_QUALITY_LLM": "vertex",
        "EDP_QUALITY_LLM_BASE_URL": f"http://127.0.0.1:{free_port()}",
        "EDP_QUALITY_LLM_TIMEOUT_S": "3",
    }
    for name in ("PUBSUB_EMULATOR_HOST", "EDP_DUCKDB_PATH", "EDP_TRACES_FILE"):
        env.pop(name, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "edp_tools.cli.main", "dev", "--port-base", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        doc = wait_dev_ready(proc, state, timeout=300)
        doc["state"] = state
        yield doc
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=180)
        assert proc.returncode == 0, output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(folder, ignore_errors=True)


def _post(url: str, body: object, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as response:
        return str(response.read().decode())


def _event(at: dt.datetime, n: int) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": "page_view",
        "anonymous_id": f"anon-{n}",
        "session_id": f"s-{n}",
        "client_timestamp": at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "page_location": "https://shop.example/",
    }


def _settings(stack: dict[str, Any]) -> Settings:
    return Settings(
        _env_file=None, project=PROJECT, pubsub_emulator_host=stack["env"]["PUBSUB_EMULATOR_HOST"]
    )


def _send_events(ingest: str, now: dt.datetime) -> int:
    """Two weeks of same-hour history for the volume check, a drop in the scored hour, and
    refused and unauthenticated requests."""
    volume = next(t for t in load_catalog().tables if t.ref == "raw.user_events").checks.volume
    assert volume is not None
    # The scored events are in the window's last minute, also inside the row checks' last 60
    # minutes (the null rate has rows to rate); the history starts in its first slot (the
    # detector counts no history before the first slot with rows).
    start, end = scored_window(now, volume)
    first, last = start + dt.timedelta(minutes=1), end - dt.timedelta(minutes=1)
    batches = [(last, 2)]  # the scored hour: 2 events...
    for week in (1, 2):  # ...against 40 in the same hour one and two weeks before
        batches += [(at - dt.timedelta(days=7 * week), 20) for at in (first, last)]
    n = 0
    for at, count in batches:
        events = []
        for _ in range(count):
            n += 1
            events.append(_event(at, n))
        status, body = _post(f"{ingest}/v1/events", events, {"X-Write-Key": WRITE_KEY})
        assert status == 200, body
    status, body = _post(f"{ingest}/v1/events", [{"event_type": "page_view"}],
                         {"X-Write-Key": WRITE_KEY})  # fmt: skip
    assert status in (200, 207, 400), body  # refused: no anonymous_id, no timestamp
    status, _ = _post(f"{ingest}/v1/events", [_event(now, 0)], {"X-Write-Key": "not-a-key"})
    assert status == 401
    return n


def _fast_redelivery(settings: Settings, subscription: str) -> None:
    """The CDC subscriptions retry after 10 s and more; a poison message needs five deliveries
    before it is dead-lettered, so this test shortens the wait (the policy is not the subject)."""
    get_subscriber(settings).update_subscription(
        request={
            "subscription": {
                "name": subscription_path(settings.project, subscription),
                "retry_policy": {
                    "minimum_backoff": {"seconds": 0},
                    "maximum_backoff": {"seconds": 1},
                },
            },
            "update_mask": {"paths": ["retry_policy"]},
        }
    )


def _commit_an_order(dsn: str) -> int:
    order_id = 900_000 + int(time.time()) % 100_000
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO shop.orders (order_id, order_uuid, user_id, status, currency, "
                "subtotal, total_amount, created_at, updated_at) VALUES (%s, gen_random_uuid(), "
                "1, 'pending', 'KRW', 10, 10, now(), now())",
                (order_id,),
            )
        conn.commit()
    finally:
        conn.close()
    return order_id


@pytest.fixture(scope="module")
def traffic(stack: dict[str, Any]) -> dict[str, Any]:
    endpoints = stack["endpoints"]
    settings = _settings(stack)
    now = dt.datetime.now(dt.UTC)
    sent = _send_events(endpoints["fn:ingest"], now)
    publish_all(settings.topic_events, [Message(b"{not an event")], settings=settings)
    orders = f"{settings.cdc_topic_prefix}.shop.orders"
    _fast_redelivery(settings, f"{settings.cdc_subscription_prefix}.shop.orders")
    publish_all(orders, [Message(b"{not json")], settings=settings)
    order_id = _commit_an_order(endpoints["shop database"])

    etl = endpoints["fn:etl"]
    status, body = _post(f"{etl}/run", {"date": now.date().isoformat(),
                                        "model": "mart.orders_daily"})  # fmt: skip
    assert status == 200, body
    status, body = _post(f"{etl}/freshness", {})
    assert status == 200, body

    # The quality run needs every event in raw.user_events: wait for the stream loader.
    loader = json.loads(_get(endpoints["metrics targets"]))["stream-loader"]["url"]

    def loaded() -> float:
        scraped = _families_with_values(_get(loader)).get("load_rows_total", [])
        return sum(v for labels, v in scraped if labels["outcome"] == "loaded")

    wait_until(lambda: loaded() >= sent, timeout=120, what=f"the loader to load {sent} events")
    status, quality = _post(
        endpoints["fn:quality_check"], {"tables": ["raw.user_events"], "now": now.isoformat()}
    )
    assert status == 200, quality
    return {"order_id": order_id, "quality": quality}


def _families_with_values(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Sample name -> (label set, value) of one Prometheus exposition."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return out


def _families(text: str) -> dict[str, list[dict[str, str]]]:
    """Sample name -> label sets, from one Prometheus exposition."""
    return {n: [labels for labels, _ in s] for n, s in _families_with_values(text).items()}


def _scrape_all(targets: dict[str, Any], errors: dict[str, str]) -> dict[str, list[dict[str, str]]]:
    merged: dict[str, list[dict[str, str]]] = {}
    for job, target in targets.items():
        try:
            text = _get(target["url"])
        except OSError as exc:
            errors[f"scrape of {job}"] = str(exc)
            continue
        for name, label_sets in _families(text).items():
            merged.setdefault(name, []).extend(label_sets)
    return merged


def _missing(spec: MetricSpec, scraped: dict[str, list[dict[str, str]]]) -> str | None:
    """Why ``spec`` is not in ``scraped`` as declared, or None."""
    names = [spec.name + s for s in HISTOGRAM_SUFFIXES] if spec.is_histogram else [spec.name]
    for name in names:
        if name not in scraped:
            return f"{name} not exposed"
        extra = {"le"} if name.endswith("_bucket") else set()
        for labels in scraped[name]:
            got = set(labels) - SCOPE_LABELS - extra
            if got != set(spec.labels):
                return f"{name} has labels {sorted(got)}, declared {sorted(spec.labels)}"
    return None


def test_every_catalogue_metric_is_scraped_with_its_declared_labels(
    stack: dict[str, Any], traffic: dict[str, Any]
) -> None:
    assert traffic["quality"]["incidents"], traffic["quality"]  # the scored drop opened one
    targets_url = stack["endpoints"]["metrics targets"]
    targets: dict[str, Any] = json.loads(_get(targets_url))
    assert set(targets) == JOBS
    problems: dict[str, str] = {}

    def complete() -> bool:
        problems.clear()
        scraped = _scrape_all(targets, problems)
        for spec in METRICS:
            why = _missing(spec, scraped)
            if why:
                problems[spec.name] = why
        return not problems

    # The CDC dead letter needs five deliveries and the flush loop flushes every few seconds.
    try:
        wait_until(complete, timeout=180, interval=2.0, what="every catalogue metric")
    except Exception:
        logs = {
            job: _log_tail(stack["state"], job)
            for job in JOBS
            if f"scrape of {job}" in problems
        }  # fmt: skip
        pytest.fail(f"metrics missing or mislabelled: {json.dumps(problems, indent=1)}\n{logs}")
    # The dashboards' scraper reads every endpoint too.
    wait_until(
        lambda: all(t["up"] and t["samples"] for t in json.loads(_get(targets_url)).values()),
        timeout=30,
        what="every scrape target up",
    )


def _log_tail(state: Path, job: str) -> str:
    name = (
        f"fn-{job}" if job in {"ingest", "cdc_flush", "etl", "quality_check", "sql_review"} else job
    )
    path = state / "logs" / f"{name}.log"
    return path.read_text(errors="replace")[-3000:] if path.exists() else "(no log)"


def _tiles(page: str) -> dict[str, bool]:
    found = re.findall(r'<section class="tile" data-local="(yes|no)"><h2>([^<]*)</h2>', page)
    return {html.unescape(title): local == "yes" for local, title in found}


def test_the_dashboards_show_what_every_process_emits(
    stack: dict[str, Any], traffic: dict[str, Any]
) -> None:
    base = stack["endpoints"]["dashboards"]
    missing: list[str] = []

    def shown() -> bool:
        missing.clear()
        for dashboard, titles in TILES.items():
            tiles = _tiles(_get(f"{base}d/{dashboard}"))
            missing.extend(f"{dashboard}: {t}" for t in titles if not tiles.get(t))
        return not missing

    try:
        wait_until(shown, timeout=180, interval=2.0, what="the tiles to show local data")
    except Exception:
        pytest.fail(f"tiles without local data: {missing}")
    # The scorecard counts the checks failing now (status 2 fail or 3 error, as the alert).
    page = _get(f"{base}d/quality-checks")
    (failing,) = re.findall(r'<h2>Failing checks</h2><p class="scorecard">([^<]*)</p>', page)
    counts = traffic["quality"]["checks"]
    assert float(failing) == counts.get("fail", 0) + counts.get("error", 0) == 1


def _spans(state: Path) -> list[dict[str, Any]]:
    spans = []
    for line in (state / "traces.jsonl").read_text().splitlines():
        if line.strip():
            spans.append(json.loads(line))
    return spans


def _ids(span: dict[str, Any]) -> tuple[str, str]:
    return span["context"]["trace_id"], span["context"]["span_id"]


def _links(span: dict[str, Any]) -> set[tuple[str, str]]:
    return {(ln["context"]["trace_id"], ln["context"]["span_id"]) for ln in span["links"]}


def test_a_cdc_change_and_an_event_are_each_one_trace(
    stack: dict[str, Any], traffic: dict[str, Any]
) -> None:
    settings = _settings(stack)
    orders = f"{settings.cdc_topic_prefix}.shop.orders"

    def traced() -> bool:
        spans = _spans(stack["state"])
        producers = {
            _ids(s)
            for s in spans
            if s["name"] == f"{orders} publish" and s["attributes"]["db.operation.name"] == "c"
        }
        flushes = [s for s in spans if s["name"] == "cdc_flush process"]
        cdc = any(producers & _links(batch) for batch in flushes)
        publishes = {_ids(s) for s in spans if s["name"] == f"{settings.topic_events} publish"}
        loads = [s for s in spans if s["name"] == "events-loader process"]
        events = any(publishes & _links(batch) for batch in loads)
        return cdc and events

    wait_until(traced, timeout=120, interval=2.0, what="linked producer and consumer spans")
