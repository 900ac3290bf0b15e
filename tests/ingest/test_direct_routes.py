"""Ingest POSTs skip flask's dispatch (``edp.ingest.app.IngestRoutes``) and answer exactly as it
did: flask's own ``wsgi_app``, kept behind the middleware, is the referee for every request
shape (accepted, partial, refused, unauthenticated, cross-origin, compressed, beacon, Segment),
and for an unexpected error."""

from __future__ import annotations

import gzip
import logging
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from flask import Flask, request_started
from werkzeug.test import Client

from edp.ingest.app import IngestRoutes, create_app
from edp.ingest.publisher import RecordingPublisher
from edp.settings import Settings

from .conftest import AUTH, WRITE_KEY, basic, event

SHOP = "https://shop.example"
NOW = datetime(2026, 11, 26, 10, 0, 5, tzinfo=UTC)


def _app(**overrides: Any) -> tuple[Flask, RecordingPublisher]:
    settings = Settings(
        _env_file=None,
        project="p",
        write_keys=WRITE_KEY,
        cors_origins=SHOP,
        metrics_exporter="none",
        **overrides,
    )
    publisher = RecordingPublisher()
    return create_app(settings, publisher, clock=lambda: NOW), publisher


_BIG = {"events": [event(anonymous_id=f"a{i}") for i in range(501)]}
# (path, headers, body): one of each answer the routes give.
CASES: dict[str, tuple[str, dict[str, str], bytes]] = {
    "single": ("/v1/events", AUTH, orjson.dumps(event())),
    "batch": ("/v1/events", AUTH, orjson.dumps({"events": [event(), event(anonymous_id="b")]})),
    "partial": ("/v1/events", AUTH, orjson.dumps([event(), {"event_type": "page_view"}])),
    "all_invalid": ("/v1/events", AUTH, orjson.dumps([{"event_type": "nope"}])),
    "unparseable": ("/v1/events", AUTH, b"{not json"),
    "empty": ("/v1/events", AUTH, b""),
    "too_many": ("/v1/events", AUTH, orjson.dumps(_BIG)),
    "no_key": ("/v1/events", {}, orjson.dumps(event())),
    "unknown_key": ("/v1/events", {"X-Write-Key": "nope"}, orjson.dumps(event())),
    "allowed_origin": ("/v1/events", {**AUTH, "Origin": SHOP}, orjson.dumps(event())),
    "foreign_origin": ("/v1/events", {**AUTH, "Origin": "https://evil.example"}, b"{}"),
    "gzip": (
        "/v1/events",
        {**AUTH, "Content-Encoding": "gzip"},
        gzip.compress(orjson.dumps(event()), mtime=0),
    ),
    "segment_track": (
        "/v1/t",
        basic(WRITE_KEY),
        orjson.dumps(
            {
                "type": "track",
                "event": "Product Viewed",
                "anonymousId": "a1",
                "timestamp": "2026-11-26T10:00:00.000Z",
                "properties": {"product_id": "p1"},
            }
        ),
    ),
    "segment_key_in_body": (
        "/v1/page",
        {},
        orjson.dumps(
            {"writeKey": WRITE_KEY, "anonymousId": "a1", "timestamp": "2026-11-26T10:00:00Z"}
        ),
    ),
    "beacon": (
        f"/beacon/v1/batch?writeKey={WRITE_KEY}",
        {},
        orjson.dumps({"batch": [{"type": "page", "anonymousId": "a1"}]}),
    ),
    "key_in_url_elsewhere": (f"/v1/events?writeKey={WRITE_KEY}", {}, b"{}"),
}


def _answer(wsgi: Any, path: str, headers: dict[str, str], body: bytes) -> tuple[Any, ...]:
    response = Client(wsgi).post(path, data=body, headers=headers)
    return response.status_code, sorted(response.headers.items()), response.get_data()


def _published(publisher: RecordingPublisher) -> dict[str, list[list[dict[str, Any]]]]:
    """What reached each topic, without the random event ids."""
    out: dict[str, list[list[dict[str, Any]]]] = {}
    for topic, messages in publisher.messages.items():
        for m in messages:
            rows = [orjson.loads(line) for line in m.data.splitlines()]
            for row in rows:
                row.pop("event_id", None)
            out.setdefault(topic, []).append(rows)
    return out


@pytest.mark.parametrize("case", sorted(CASES))
def test_direct_route_answers_as_flask_dispatch_did(case: str) -> None:
    path, headers, body = CASES[case]
    direct_app, direct_bus = _app()
    flask_app, flask_bus = _app()
    assert isinstance(flask_app.wsgi_app, IngestRoutes)
    direct = _answer(direct_app, path, headers, body)
    referee = _answer(flask_app.wsgi_app.flask_wsgi, path, headers, body)
    assert direct == referee
    assert _published(direct_bus) == _published(flask_bus)


def test_ingest_posts_skip_flask_dispatch_and_the_rest_keep_it() -> None:
    app, _ = _app()
    dispatched: list[str] = []

    def record(sender: Flask, **_: Any) -> None:
        from flask import request

        dispatched.append(f"{request.method} {request.path}")

    request_started.connect(record, app)
    try:
        client = app.test_client()
        assert (
            client.post("/v1/events", data=orjson.dumps(event()), headers=AUTH).status_code == 200
        )
        assert client.post("/v1/track", data=b"{}", headers=AUTH).status_code == 400
        assert client.get("/healthz").status_code == 200
        assert client.get("/v1/events").status_code == 405
        assert client.options("/v1/events", headers={"Origin": SHOP}).status_code == 204
    finally:
        request_started.disconnect(record, app)
    assert dispatched == ["GET /healthz", "GET /v1/events", "OPTIONS /v1/events"]


def test_an_unexpected_error_is_a_logged_500_as_under_flask(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(_: Any) -> Any:
        raise RuntimeError("validator bug")

    settings = Settings(_env_file=None, project="p", write_keys=WRITE_KEY)
    app = create_app(settings, RecordingPublisher(), validator=broken)
    body = orjson.dumps(event())
    assert isinstance(app.wsgi_app, IngestRoutes)
    with caplog.at_level(logging.ERROR):
        direct = _answer(app, "/v1/events", AUTH, body)
    status, _, payload = direct
    assert status == 500
    assert orjson.loads(payload)["error"] == "internal_server_error"
    logged = [r for r in caplog.records if r.exc_info and "validator bug" in str(r.exc_info[1])]
    assert [r.getMessage() for r in logged] == ["Exception on /v1/events [POST]"]
    assert direct == _answer(app.wsgi_app.flask_wsgi, "/v1/events", AUTH, body)
