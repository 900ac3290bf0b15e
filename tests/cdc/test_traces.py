"""A captured change is one trace from the local CDC reader to cdc_flush's write.

Expected structure, as for ingest (tests/observability/test_traces.py): the W3C Trace Context
``traceparent`` attribute (``00-<trace-id>-<parent-span-id>-<flags>``) names the producer span;
a batch consumer links to each message's producer span (OpenTelemetry messaging conventions),
and the warehouse write is the batch span's child. Here the producer is the real reader
streaming a real PostgreSQL commit, and the consumer the real flusher; spans are read back from
the file exporter.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

from tests.spans import read_spans

from edp.bus.messages import pull
from edp.cdc.flush import CdcFlusher
from edp.observability import tracing
from edp.settings import Settings, get_settings
from edp.warehouse.port import Warehouse
from edp_tools.cdc.shop import connect

from .conftest import ShopDb, reader_config
from .pipeline import running_reader, wait_caught_up
from .test_reader import insert_order


def _ids(span: dict[str, Any]) -> tuple[str, str]:
    return span["context"]["trace_id"], span["context"]["span_id"]


def _commit_order(shop_db: ShopDb, order_id: int) -> None:
    """Commit one order in the shop and wait until the reader has published it."""
    conn = connect(shop_db.dsn)
    with conn.cursor() as cur:
        insert_order(cur, order_id)
    conn.commit()
    conn.close()
    wait_caught_up(shop_db.dsn, shop_db.slot)


def test_a_committed_change_and_its_flush_are_one_trace(
    spans_file: Path, shop_db: ShopDb, cdc_settings: Settings, warehouse: Warehouse,
    tmp_path: Path,
) -> None:  # fmt: skip
    settings = get_settings()  # the fixture's topics, with the span file
    config = reader_config(shop_db, settings, tmp_path)
    with running_reader(config, settings):
        _commit_order(shop_db, 4242)
    flusher = CdcFlusher(warehouse, settings.model_copy(update={"cdc_flush_interval_sec": 0.3}))
    flusher.run(until_idle_s=2.0, max_run_s=60)
    assert flusher.stats.rows_written == 1
    (row,) = warehouse.query("SELECT order_id, source_ts FROM raw.cdc_orders").rows
    assert row["order_id"] == 4242

    spans = read_spans(spans_file)
    topic = f"{settings.cdc_topic_prefix}.shop.orders"
    (publish,) = [s for s in spans if s["name"] == f"{topic} publish"]
    (batch,) = [s for s in spans if s["name"] == "cdc_flush process"]
    (write,) = [s for s in spans if s["name"] == "warehouse write"]
    assert publish["kind"] == "SpanKind.PRODUCER" and publish["parent_id"] is None
    assert publish["attributes"]["db.collection.name"] == "shop.orders"
    assert publish["attributes"]["db.operation.name"] == "c"
    links = {(ln["context"]["trace_id"], ln["context"]["span_id"]) for ln in batch["links"]}
    assert _ids(publish) in links, "the flush batch must link to the change's producer span"
    assert write["parent_id"] == batch["context"]["span_id"]
    assert write["attributes"]["db.collection.name"] == "raw.cdc_orders"
    # The producer span covers the capture hop: it starts at the source commit (Debezium's
    # source.ts_us, stored as source_ts), not when the reader saw the change.
    commit = row["source_ts"].replace(tzinfo=dt.UTC) if row["source_ts"].tzinfo is None else (
        row["source_ts"])  # fmt: skip
    assert _iso(publish["start_time"]) == commit
    assert _iso(publish["end_time"]) > commit
    # Transaction markers and heartbeats are not changes: no producer span, no traceparent.
    assert all(s["name"].startswith(f"{settings.cdc_topic_prefix}.shop.") for s in spans
               if s["kind"] == "SpanKind.PRODUCER")  # fmt: skip


def test_without_tracing_the_messages_carry_no_traceparent(
    shop_db: ShopDb, cdc_settings: Settings, tmp_path: Path
) -> None:
    tracing.reset_for_tests()
    settings = get_settings()
    assert settings.traces_exporter == "none"
    with running_reader(reader_config(shop_db, settings, tmp_path), settings):
        _commit_order(shop_db, 7)
    sub = f"{settings.cdc_subscription_prefix}.shop.orders"
    deadline = time.monotonic() + 30
    got: list[Any] = []
    while not got and time.monotonic() < deadline:
        got = pull(sub, max_messages=10, settings=settings)
    assert got, "the change never reached its subscription"
    assert all("traceparent" not in m.attributes for m in got)


def _iso(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
