"""Strangers store nothing; keys in URLs only where a beacon needs them; CORS per write key.

Expected behaviour (README "Ingest API", Fetch standard for CORS):

* a request without a valid key is refused (401, or 400/413 when its body cannot even be read to
  find a key) and only counted in ``ingest_unauthenticated_requests_total``: nothing on the
  events topic, nothing on events-bad;
* ``?writeKey=`` works on ``/beacon/v1/batch`` only (``navigator.sendBeacon`` cannot set
  headers); anywhere else it is refused (400) without being checked;
* Fetch standard, "CORS protocol": a preflight is an ``OPTIONS`` request with
  ``Access-Control-Request-Method``; it is answered only for a route and method that exist;
  the opaque origin is serialised as ``null`` and must never be allowed.
"""

from __future__ import annotations

import gzip
import logging

import orjson
import pytest
from flask import Flask

from edp.ingest.access import RedactWriteKeys, redact_write_keys
from edp.ingest.app import service_of

from .conftest import AUTH, OTHER_KEY, WRITE_KEY, AppFactory, Bus, event

TRACK = {"type": "track", "event": "Product Viewed", "anonymousId": "a-1", "properties": {}}


def _strangers(app: Flask) -> int:
    counter = service_of(app).metrics.unauthenticated
    with counter._lock:  # a test reads every series
        return sum(counter._values.values())


@pytest.mark.parametrize(
    ("path", "body", "headers", "status"),
    [
        ("/v1/events", orjson.dumps(event()), {}, 401),
        ("/v1/events", orjson.dumps(event()), {"X-Write-Key": "nope"}, 401),
        ("/v1/track", orjson.dumps({**TRACK, "writeKey": "nope"}), {}, 401),
        ("/v1/track", orjson.dumps(TRACK), {}, 401),
        ("/v1/batch", b"{not json", {}, 400),
        ("/v1/batch", b"x" * (600 * 1024), {}, 413),
        ("/v1/batch", gzip.compress(b" " * (2 * 1024 * 1024)), {"Content-Encoding": "gzip"}, 413),
        ("/v1/batch", b"[" * 5000 + b"]" * 5000, {}, 400),
    ],
)
def test_strangers_are_counted_not_stored(
    app: Flask, bus: Bus, path: str, body: bytes, headers: dict[str, str], status: int
) -> None:
    before = _strangers(app)
    r = app.test_client().post(path, data=body, headers=headers)
    assert r.status_code == status, r.json
    assert r.json["reason"]
    assert _strangers(app) == before + 1
    assert bus.events() == [] and bus.bad() == []


def test_authenticated_refusals_are_still_audited(app: Flask, bus: Bus) -> None:
    r = app.test_client().post("/v1/events", data=b"{not json", headers=AUTH)
    assert r.status_code == 400
    (bad,) = bus.bad()
    assert bad["failure_type"] == "format_error" and bad["raw"] == "{not json"


def test_write_key_in_url_only_on_beacon(app: Flask, bus: Bus) -> None:
    client = app.test_client()
    body = orjson.dumps({"batch": [TRACK]})
    beacon = client.post(f"/beacon/v1/batch?writeKey={WRITE_KEY}", data=body)
    assert beacon.status_code == 200
    for path in ("/v1/batch", "/v1/events"):
        r = client.post(f"{path}?writeKey={WRITE_KEY}", data=body, headers=AUTH)
        assert r.status_code == 400 and "X-Write-Key" in r.json["reason"], path
    assert len(bus.events()) == 1 and bus.bad() == []


def test_write_keys_redacted_from_logs(caplog: pytest.LogCaptureFixture) -> None:
    assert redact_write_keys("/beacon/v1/batch?writeKey=abc&x=1") == (
        "/beacon/v1/batch?writeKey=[redacted]&x=1"
    )
    logger = logging.getLogger("test.redaction")
    logger.addFilter(RedactWriteKeys())
    with caplog.at_level(logging.INFO, logger="test.redaction"):
        logger.info('"POST %s HTTP/1.1" 200', f"/beacon/v1/batch?writeKey={WRITE_KEY}")
    assert WRITE_KEY not in caplog.text and "[redacted]" in caplog.text


def test_cors_allow_list_per_key(make_app: AppFactory, bus: Bus) -> None:
    app = make_app(
        cors_origins="https://shop.example",
        cors_origins_by_key={OTHER_KEY: ["https://partner.example"]},
    )
    client = app.test_client()
    data = orjson.dumps(event())

    def post(key: str, origin: str) -> int:
        headers = {"X-Write-Key": key, "Origin": origin}
        return client.post("/v1/events", data=data, headers=headers).status_code

    assert post(WRITE_KEY, "https://shop.example") == 200
    assert post(OTHER_KEY, "https://partner.example") == 200
    assert post(WRITE_KEY, "https://partner.example") == 403  # not this key's origin
    assert post(OTHER_KEY, "https://shop.example") == 403
    assert client.post("/v1/events", data=data, headers=AUTH).status_code == 200  # no browser
    # The preflight carries no key: answered for the union of the lists.
    for origin in ("https://shop.example", "https://partner.example"):
        pre = client.options(
            "/v1/events", headers={"Origin": origin, "Access-Control-Request-Method": "POST"}
        )
        assert pre.status_code == 204 and pre.headers["Access-Control-Allow-Origin"] == origin
    assert len(bus.events()) == 3 and bus.bad() == []


def test_null_origin_never_allowed(app: Flask) -> None:
    """Even with the default ``*``, the opaque origin ``null`` gets no CORS grant."""
    client = app.test_client()
    pre = client.options(
        "/v1/events", headers={"Origin": "null", "Access-Control-Request-Method": "POST"}
    )
    assert pre.status_code == 403
    r = client.post("/v1/events", data=orjson.dumps(event()), headers={**AUTH, "Origin": "null"})
    assert r.status_code == 403 and "Access-Control-Allow-Origin" not in r.headers


def test_preflight_only_for_existing_routes_and_methods(app: Flask) -> None:
    client = app.test_client()
    origin = {"Origin": "https://shop.example"}
    unknown = client.options(
        "/v1/nope", headers={**origin, "Access-Control-Request-Method": "POST"}
    )
    assert unknown.status_code == 404
    wrong = client.options(
        "/v1/events", headers={**origin, "Access-Control-Request-Method": "DELETE"}
    )
    assert wrong.status_code == 405
    assert "Access-Control-Allow-Origin" not in wrong.headers
    probe = client.options("/healthz", headers={**origin, "Access-Control-Request-Method": "GET"})
    assert probe.status_code == 404
