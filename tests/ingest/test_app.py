"""The ingest app end to end on the real Pub/Sub emulator (flask test client)."""

from __future__ import annotations

import gzip
import json
import uuid
import zlib
from datetime import UTC, datetime

import orjson
import pytest
from flask import Flask

from edp.ingest.app import create_app, service_of
from edp.ingest.openapi import DOCUMENT_PATH, render
from edp.ingest.publisher import PubSubPublisher

from .conftest import AUTH, OTHER_KEY, WRITE_KEY, AppFactory, Bus, basic, event


def post(app: Flask, path: str, body: object, headers: dict[str, str] | None = None, **kw: object):
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    return app.test_client().post(
        path, data=data, headers=AUTH if headers is None else headers, **kw
    )


# --- native API -----------------------------------------------------------------------------------
def test_single_event_is_published_enriched(app: Flask, bus: Bus) -> None:
    client_id = str(uuid.uuid4())
    r = post(app, "/v1/events", event(event_id=client_id, sent_at="2026-11-26T10:00:05Z"))
    assert r.status_code == 200
    assert r.json == {"success": True, "accepted": 1, "rejected": 0}
    messages = bus.event_messages()
    assert len(messages) == 1
    assert messages[0].attributes == {
        "schema_version": "1.0",
        "event_count": "1",
        "event_type": "page_view",
    }
    (published,) = [orjson.loads(line) for line in messages[0].data.splitlines()]
    assert published["event_id"] == client_id
    assert published["source"] == "native"
    assert published["schema_version"] == "1.0"
    received = datetime.fromisoformat(published["received_at"])
    corrected = datetime.fromisoformat(published["event_timestamp"])
    # client clock 5 s behind its own send time: the event happened 5 s before receipt.
    assert (received - corrected).total_seconds() == pytest.approx(5.0)
    assert datetime.fromisoformat(published["ingested_at"]) >= received
    assert bus.bad() == []


def test_batch_object_and_array_forms(app: Flask, bus: Bus) -> None:
    r1 = post(app, "/v1/events", {"events": [event(), event(event_type="view_item")]})
    r2 = post(app, "/v1/events", [event(), event()])
    assert (r1.status_code, r2.status_code) == (200, 200)
    messages = bus.event_messages()
    assert sorted(m.attributes["event_type"] for m in messages) == ["mixed", "page_view"]
    assert len(bus.events()) == 0  # already drained above
    assert sum(int(m.attributes["event_count"]) for m in messages) == 4


def test_event_id_generated_when_absent(app: Flask, bus: Bus) -> None:
    assert post(app, "/v1/events", [event(), event()]).status_code == 200
    ids = [e["event_id"] for e in bus.events()]
    assert len(set(ids)) == 2
    assert all(uuid.UUID(i).version == 4 for i in ids)


def test_batch_sent_at_applies_to_events_without_one(app: Flask, bus: Bus) -> None:
    body = {
        "events": [event(client_timestamp="2026-11-26T10:00:00Z")],
        "sent_at": "2026-11-26T10:00:30Z",
    }
    assert post(app, "/v1/events", body).status_code == 200
    (published,) = bus.events()
    delta = datetime.fromisoformat(published["received_at"]) - datetime.fromisoformat(
        published["event_timestamp"]
    )
    assert delta.total_seconds() == pytest.approx(30.0)


def test_partial_batch_accepts_valid_and_reports_each_refusal(app: Flask, bus: Bus) -> None:
    body = {
        "events": [
            event(),
            {"event_type": "not_a_ga4_event", "anonymous_id": "a"},
            "just a string",
            event(event_type="purchase"),  # purchase needs transaction_id, currency, value
            event(event_type="view_item"),
        ]
    }
    r = post(app, "/v1/events", body)
    assert r.status_code == 207
    assert r.json["accepted"] == 2
    assert r.json["rejected"] == 3
    results = {x["index"]: x for x in r.json["results"]}
    assert sorted(results) == [1, 2, 3]
    assert all(x["error"] == "schema_violation" and x["reason"] for x in results.values())
    assert "event_type" in results[1]["reason"]
    assert [e["event_type"] for e in bus.events()] == ["page_view", "view_item"]
    bad = bus.bad()
    assert sorted(b["index"] for b in bad) == [1, 2, 3]
    assert all(b["failure_type"] == "schema_violation" and b["reason"] for b in bad)
    assert {b["raw"] for b in bad} >= {'"just a string"'}


def test_all_invalid_is_400_with_reasons(app: Flask, bus: Bus) -> None:
    r = post(app, "/v1/events", [{"event_type": "page_view"}])  # no ids, no timestamp
    assert r.status_code == 400
    assert r.json["accepted"] == 0
    (result,) = r.json["results"]
    assert result["index"] == 0 and result["error"] == "schema_violation"
    assert {e["loc"] for e in result["errors"]} >= {"client_timestamp"}
    assert bus.events() == []
    assert len(bus.bad()) == 1


@pytest.mark.parametrize(
    ("body", "reason_part"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "empty body"),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
        (b'{"events": {"a": 1}}', "'events' must be an array"),
        (b'{"events": []}', "no events"),
        (b'{"events": [], "extra": 1}', "unknown batch fields"),
    ],
)
def test_unparseable_bodies_are_400_and_audited(
    app: Flask, bus: Bus, body: bytes, reason_part: str
) -> None:
    r = post(app, "/v1/events", body)
    assert r.status_code == 400
    assert r.json["error"] == "format_error"
    assert reason_part in r.json["reason"]
    (bad,) = bus.bad()
    assert bad["failure_type"] == "format_error" and bad["index"] is None


# --- size limits ----------------------------------------------------------------------------------
def test_oversize_body_is_413(app: Flask, bus: Bus) -> None:
    big = [event(params={"pad": "x" * 30_000}) for _ in range(20)]  # ~600 KB > 512 KB
    r = post(app, "/v1/events", big)
    assert r.status_code == 413
    assert r.json["error"] == "size_violation"
    (bad,) = bus.bad()
    assert bad["failure_type"] == "size_violation"
    assert len(bad["raw"].encode()) <= 32 * 1024


def test_too_many_events_is_413(make_app: AppFactory, bus: Bus) -> None:
    app = make_app(max_batch_events=10)
    r = post(app, "/v1/events", [event() for _ in range(11)])
    assert r.status_code == 413
    assert "11 events" in r.json["reason"]
    assert bus.events() == []


def test_oversize_event_refused_others_published(app: Flask, bus: Bus) -> None:
    r = post(app, "/v1/events", [event(), event(params={"pad": "y" * 40_000}), event()])
    assert r.status_code == 207
    (result,) = r.json["results"]
    assert result["index"] == 1 and result["error"] == "size_violation"
    assert len(bus.events()) == 2
    (bad,) = bus.bad()
    assert bad["failure_type"] == "size_violation"
    assert bad["raw_truncated"] is True
    assert len(bad["raw"].encode()) == 32 * 1024


def test_single_oversize_event_is_413(app: Flask) -> None:
    r = post(app, "/v1/events", event(params={"pad": "z" * 40_000}))
    assert r.status_code == 413
    assert r.json["results"][0]["error"] == "size_violation"


# --- compression ----------------------------------------------------------------------------------
def test_gzip_and_deflate_bodies(app: Flask, bus: Bus) -> None:
    raw = orjson.dumps([event(), event()])
    r1 = post(app, "/v1/events", gzip.compress(raw), {**AUTH, "Content-Encoding": "gzip"})
    r2 = post(app, "/v1/events", zlib.compress(raw), {**AUTH, "Content-Encoding": "deflate"})
    assert (r1.status_code, r2.status_code) == (200, 200)
    assert len(bus.events()) == 4


def test_gzip_bomb_is_refused_without_inflating(app: Flask, bus: Bus) -> None:
    bomb = gzip.compress(b"[" + b" " * (24 * 1024 * 1024) + b"]", compresslevel=9)  # 48x cap
    assert len(bomb) < 512 * 1024
    r = post(app, "/v1/events", bomb, {**AUTH, "Content-Encoding": "gzip"})
    assert r.status_code == 413
    assert "decompressed" in r.json["reason"]
    assert bus.events() == []


@pytest.mark.parametrize(
    ("body", "encoding"),
    [
        (b"definitely not gzip", "gzip"),
        (gzip.compress(b'[{"a": 1}]', mtime=0)[:-12], "gzip"),  # truncated stream
        (b"{}", "br"),
    ],
    ids=["not-gzip", "truncated-gzip", "not-brotli"],  # stable: the xdist workers compare ids
)
def test_bad_compressed_bodies_are_400(app: Flask, body: bytes, encoding: str) -> None:
    r = post(app, "/v1/events", body, {**AUTH, "Content-Encoding": encoding})
    assert r.status_code == 400
    assert r.json["error"] == "format_error" and r.json["reason"]


# --- auth -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "headers",
    [
        {"X-Write-Key": WRITE_KEY},
        {"X-Write-Key": OTHER_KEY},
        basic(WRITE_KEY),
        basic(OTHER_KEY),
    ],
)
def test_write_key_accepted(app: Flask, bus: Bus, headers: dict[str, str]) -> None:
    assert post(app, "/v1/events", event(), headers).status_code == 200
    assert len(bus.events()) == 1


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Write-Key": "wrong"},
        {"X-Write-Key": WRITE_KEY + "x"},
        basic("wrong"),
        {"Authorization": "Bearer " + WRITE_KEY},
        {"Authorization": "Basic %%%not-base64"},
    ],
)
def test_unknown_or_missing_key_is_401_and_stores_nothing(
    app: Flask, bus: Bus, headers: dict[str, str]
) -> None:
    """A stranger's request is only counted: nothing on events, nothing on events-bad."""
    counter = service_of(app).metrics.unauthenticated
    before = sum(counter.value(("events", r)) for r in ("missing_key", "unknown_key"))
    r = post(app, "/v1/events", event(), headers)
    assert r.status_code == 401
    assert r.json["error"] == "auth" and r.json["reason"]
    assert r.headers["WWW-Authenticate"].startswith("Basic")
    assert bus.events() == []
    assert bus.bad() == []
    after = sum(counter.value(("events", r)) for r in ("missing_key", "unknown_key"))
    assert after == before + 1


def test_write_key_in_body_for_analytics_js(app: Flask, bus: Bus) -> None:
    """analytics.js sends text/plain with the writeKey in the body (no preflight)."""
    message = {
        "type": "track",
        "event": "Product Viewed",
        "anonymousId": "a-1",
        "properties": {"product_id": "p1"},
        "writeKey": WRITE_KEY,
    }
    ok = post(app, "/v1/track", message, {"Content-Type": "text/plain"})
    wrong = post(app, "/v1/track", {**message, "writeKey": "nope"}, {"Content-Type": "text/plain"})
    assert (ok.status_code, wrong.status_code) == (200, 401)
    assert [e["event_type"] for e in bus.events()] == ["view_item"]


def test_no_keys_outside_local_refuses_to_start(bus: Bus) -> None:
    from edp.errors import ConfigError

    with pytest.raises(ConfigError, match="EDP_WRITE_KEYS"):
        create_app(bus.settings(write_keys="", environment="prod"), PubSubPublisher("p"))


# --- CORS -----------------------------------------------------------------------------------------
def test_preflight_and_cors_headers(make_app: AppFactory) -> None:
    app = make_app(cors_origins="https://shop.example,https://m.shop.example")
    client = app.test_client()
    pre = client.options(
        "/v1/events",
        headers={
            "Origin": "https://shop.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, x-write-key",
        },
    )
    assert pre.status_code == 204
    assert pre.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert "POST" in pre.headers["Access-Control-Allow-Methods"]
    assert pre.headers["Access-Control-Allow-Headers"] == "content-type, x-write-key"
    rudder = client.options(
        "/v1/track",
        headers={
            "Origin": "https://shop.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,anonymousid,content-type",
        },
    )
    assert (
        rudder.headers["Access-Control-Allow-Headers"] == "authorization, anonymousid, content-type"
    )
    plain = client.options("/v1/events", headers={"Origin": "https://shop.example"})
    assert "X-Write-Key" in plain.headers["Access-Control-Allow-Headers"]
    denied = client.options("/v1/events", headers={"Origin": "https://evil.example"})
    assert denied.status_code == 403 and denied.json["reason"]
    r = client.post(
        "/v1/events", data=orjson.dumps(event()), headers={**AUTH, "Origin": "https://shop.example"}
    )
    assert r.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert "Origin" in r.headers["Vary"]


def test_wildcard_origin_by_default(app: Flask) -> None:
    r = app.test_client().options("/v1/track", headers={"Origin": "https://any.example"})
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == "*"


# --- probes, docs, metrics ------------------------------------------------------------------------
def test_healthz_readyz(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/healthz").json == {"status": "ok"}
    assert client.get("/readyz").status_code == 200


def test_readyz_fails_when_topic_missing(make_app: AppFactory) -> None:
    app = make_app(topic_events="no-such-topic-" + uuid.uuid4().hex[:8])
    r = app.test_client().get("/readyz")
    assert r.status_code == 503
    assert "no-such-topic" in r.json["reason"]


def test_publish_failure_is_503_with_retry_after(make_app: AppFactory, bus: Bus) -> None:
    app = make_app(topic_events="no-such-topic-" + uuid.uuid4().hex[:8])
    r = post(app, "/v1/events", event())
    assert r.status_code == 503
    assert int(r.headers["Retry-After"]) > 0
    assert r.json["error"] == "unavailable" and r.json["reason"]


def test_openapi_served_equals_repo_file_and_contract(app: Flask) -> None:
    r = app.test_client().get("/openapi.json")
    assert r.status_code == 200
    assert r.data == DOCUMENT_PATH.read_bytes()
    assert DOCUMENT_PATH.read_text() == render(), "run: python -m edp.ingest.openapi"
    doc = json.loads(r.data)
    assert set(doc["paths"]) >= {
        "/v1/events",
        "/v1/track",
        "/v1/page",
        "/v1/screen",
        "/v1/identify",
        "/v1/batch",
    }


def test_metrics_exposed(app: Flask) -> None:
    client = app.test_client()
    post(app, "/v1/events", [event(), {"bad": 1}])
    text = client.get("/metrics").data.decode()
    for name in (
        "events_received_total",
        "request_latency_seconds",
        "pubsub_messages_published_total",
        "pubsub_publish_latency_seconds",
        "http_requests_total",
    ):
        assert name in text
    assert 'result="accepted"' in text and 'result="schema_violation"' in text


def test_concurrent_first_builds_share_one_set_of_instruments(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two requests on a cold instance build the app at once; both must count into the
    counters the exporter observes (the SDK ignores a second observable counter's callbacks)."""
    import threading
    import time

    from edp.ingest import metrics

    real = metrics.get_meter

    def slow_meter(name: str) -> object:
        time.sleep(0.3)  # a cold import: the second caller arrives while the first builds
        return real(name)

    monkeypatch.setattr(metrics, "get_meter", slow_meter)
    metrics.reset_ingest_metrics()
    got: list[metrics.IngestMetrics] = []
    start = threading.Barrier(4)

    def build() -> None:
        start.wait()
        got.append(metrics.ingest_metrics())

    threads = [threading.Thread(target=build) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 4 and all(m is got[0] for m in got)


def test_unknown_route_and_method_have_reasons(app: Flask) -> None:
    client = app.test_client()
    nf = client.post("/v2/nothing", data=b"{}")
    assert nf.status_code == 404 and nf.json["reason"]
    na = client.get("/v1/events")
    assert na.status_code == 405 and na.json["reason"]
    assert "POST" in na.headers["Allow"]


def test_clock_skew_of_a_fast_client(make_app: AppFactory, bus: Bus) -> None:
    """A client whose clock runs an hour ahead: event time lands near the server's receipt."""
    app = make_app()
    now = datetime.now(UTC)
    ahead = now.replace(microsecond=0).timestamp() + 3600
    sent = datetime.fromtimestamp(ahead, UTC)
    happened = datetime.fromtimestamp(ahead - 2, UTC)
    body = event(client_timestamp=happened.isoformat(), sent_at=sent.isoformat())
    assert post(app, "/v1/events", body).status_code == 200
    (published,) = bus.events()
    skew = datetime.fromisoformat(published["received_at"]) - datetime.fromisoformat(
        published["event_timestamp"]
    )
    assert skew.total_seconds() == pytest.approx(2.0)
