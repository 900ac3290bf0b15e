"""Both sinks for real: rows into a DuckDB warehouse, request bodies over loopback HTTP."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from edp.errors import TransientError
from edp.warehouse.port import Warehouse
from edp_tools.cli.generate import app
from edp_tools.generator import Generator, GeneratorConfig
from edp_tools.generator.sinks import HttpSender, send_http, write_warehouse

pytestmark = pytest.mark.timeout(120)
DAY = date(2026, 11, 24)


@pytest.fixture(scope="module")
def small_day() -> pa.Table:
    return Generator(GeneratorConfig(start=DAY, scale=0.001, seed=2)).day(0).table


def test_warehouse_sink_lands_every_row(warehouse: Warehouse, small_day: pa.Table) -> None:
    written = write_warehouse(warehouse, small_day, chunk_rows=1_000)
    assert written == small_day.num_rows
    params = {"start": DAY}
    count = warehouse.query(
        "SELECT COUNT(*) AS n, COUNT(DISTINCT event_id) AS ids FROM raw.user_events "
        "WHERE DATE(event_timestamp) >= @start",
        params,
    ).rows[0]
    assert count == {"n": small_day.num_rows, "ids": small_day.num_rows}
    purchase = warehouse.query(
        "SELECT transaction_id, value, ARRAY_LENGTH(items) AS n_items, schema_version "
        "FROM raw.user_events WHERE DATE(event_timestamp) >= @start "
        "AND event_type = 'purchase' ORDER BY transaction_id LIMIT 1",
        params,
    ).rows[0]
    assert purchase["n_items"] >= 1 and purchase["value"] > 0
    assert purchase["schema_version"] == "1.0"


class _Ingest(BaseHTTPRequestHandler):
    """A stand-in of POST /v1/events: records bodies; the first request gets a 503."""

    bodies: list[dict[str, Any]]
    keys: list[str | None]
    calls = 0
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.lock:
            type(self).calls += 1
            first = type(self).calls == 1
            if not first:
                self.bodies.append(body)
                self.keys.append(self.headers.get("X-Write-Key"))
        if self.path != "/v1/events":
            self.send_response(404)
            self.end_headers()
            return
        reply = json.dumps({"accepted": len(body["events"]), "rejected": 0}).encode()
        self.send_response(503 if first else 202)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def ingest_server() -> Iterator[tuple[str, type[_Ingest]]]:
    handler = type("Handler", (_Ingest,), {"bodies": [], "keys": [], "calls": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", handler
    finally:
        server.shutdown()
        server.server_close()


def test_http_sender_posts_every_event_with_the_write_key(
    ingest_server: tuple[str, type[_Ingest]], small_day: pa.Table
) -> None:
    url, handler = ingest_server
    table = small_day.slice(0, 1_000)
    sender = HttpSender(url=url, write_key="wk-test", concurrency=4, rate=20_000)  # paced
    stats = send_http(sender, [table], batch_size=64)
    sent_ids = [e["event_id"] for b in handler.bodies for e in b["events"]]
    assert sorted(sent_ids) == sorted(table.column("event_id").to_pylist())
    assert set(handler.keys) == {"wk-test"}
    assert stats.accepted == table.num_rows and stats.retries == 1
    assert stats.status_counts == {503: 1, 202: stats.requests}
    assert all(len(b["events"]) <= 64 for b in handler.bodies)


def test_http_sender_reports_an_endpoint_that_is_down(small_day: pa.Table) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sender = HttpSender(url=f"http://127.0.0.1:{port}", concurrency=2, max_retries=1, timeout_s=1)
    with pytest.raises(TransientError):
        send_http(sender, [small_day.slice(0, 100)], batch_size=50)


def test_cli_writes_rows_and_the_ground_truth(warehouse: Warehouse, tmp_path: Path) -> None:
    truth = tmp_path / "gt.json"
    result = CliRunner().invoke(
        app,
        ["--start", "2026-11-23", "--days", "2", "--scale", "0.001", "--seed", "3",
         "--incidents", "outage@1T03,dupes", "--ground-truth", str(truth)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(truth.read_text())
    total = sum(doc["daily_events"].values())
    n = warehouse.query(
        "SELECT COUNT(*) AS n FROM raw.user_events WHERE DATE(event_timestamp) >= @d",
        {"d": date(2026, 11, 23)},
    ).scalar()
    assert n == total > 0
    assert [i["type"] for i in doc["incidents"]] == ["outage", "dupes"]


def test_cli_refuses_a_bad_incident() -> None:
    result = CliRunner().invoke(app, ["--incidents", "meteor", "--sink", "none"])
    assert result.exit_code != 0
    assert "meteor" in result.output


def test_cli_http_sink_fails_when_ingest_accepts_nothing(
    ingest_server: tuple[str, type[_Ingest]],
) -> None:
    url, handler = ingest_server
    handler.calls = 1  # no 503 warm-up: every request is answered, none accepted (path 404)
    result = CliRunner().invoke(
        app,
        ["--start", "2026-11-24", "--scale", "0.0002", "--sink", "http",
         "--url", url + "/nowhere", "--write-key", "k"],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "accepted none" in result.output
