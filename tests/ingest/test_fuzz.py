"""Fuzzing: schemathesis against /openapi.json, hypothesis-generated hostile payloads.

Properties: no 5xx for any client input, every refusal carries a reason, valid events in the
same batch are still published. Example counts are bounded so the suite stays fast.
"""

from __future__ import annotations

import gzip
import json
from typing import Any

import orjson
import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import positive_data_acceptance

from .conftest import AUTH, WRITE_KEY, Bus, basic, event

# --- schemathesis ---------------------------------------------------------------------------------


# schemathesis' own pytest plugin does not load under pytest 9 ('Function' has no '_nodeid'), so
# the operations' hypothesis strategies are driven directly: same generation, same checks.
def _operations(app: Flask) -> list[Any]:
    api = schemathesis.openapi.from_wsgi("/openapi.json", app)
    return [result.ok() for result in api.get_all_operations()]


OPERATION_LABELS = [
    "POST /v1/events", "POST /v1/track", "POST /v1/page", "POST /v1/screen",
    "POST /v1/identify", "POST /v1/batch", "POST /beacon/v1/batch", "GET /healthz", "GET /readyz",
    "GET /openapi.json", "GET /metrics",
]  # fmt: skip


def test_openapi_documents_every_route(app: Flask) -> None:
    # schemathesis leaves out the path the document itself is served from.
    labels = {op.label for op in _operations(app)}
    assert labels == set(OPERATION_LABELS) - {"GET /openapi.json"}


@pytest.mark.parametrize("label", [x for x in OPERATION_LABELS if x.startswith("POST")])
def test_openapi_conformance(app: Flask, bus: Bus, label: str) -> None:
    (operation,) = [op for op in _operations(app) if op.label == label]

    @settings(
        max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
    )
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        response = case.call(headers=basic(WRITE_KEY))
        assert response.status_code < 500, response.text
        # Also checks that a wrong or missing key is refused (schemathesis' ignored_auth).
        # The Segment message schema is the SDKs' loose shape; whether a message maps onto the
        # event contract is decided per message (and reported in results), so "schema-valid
        # must be accepted" holds only for the native API, whose schema *is* the contract.
        excluded = [] if label == "POST /v1/events" else [positive_data_acceptance]
        case.validate_response(response, headers=basic(WRITE_KEY), excluded_checks=excluded)
        body = response.json()
        check_response(response.status_code, body)

    run()
    bus.events()


# --- hostile payloads -----------------------------------------------------------------------------
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=50),
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)
FIELDS = ["event_type", "event_id", "anonymous_id", "user_id", "client_timestamp", "sent_at",
          "items", "value", "currency", "params", "platform", "transaction_id"]  # fmt: skip


@st.composite
def hostile_event(draw: st.DrawFn) -> object:
    """A valid event with some fields replaced by wrong types/huge strings, or junk."""
    kind = draw(st.sampled_from(["mutated", "junk", "huge", "deep"]))
    if kind == "junk":
        return draw(json_values)
    base = event()
    if kind == "huge":
        base[draw(st.sampled_from(FIELDS))] = "x" * draw(st.integers(1_000, 40_000))
        return base
    if kind == "deep":
        depth = draw(st.integers(10, 300))
        nested: object = 1
        for _ in range(depth):
            nested = {"a": nested}
        base["params"] = nested  # type: ignore[assignment]
        return base
    for name in draw(st.lists(st.sampled_from(FIELDS), min_size=1, max_size=4)):
        base[name] = draw(json_values)
    return base


# Settings.max_json_depth default (README "Configuration"): deeper bodies are refused whole.
MAX_JSON_DEPTH = 64


def _depth(value: object) -> int:
    """Nesting depth of arrays/objects (a scalar is 0, ``[]`` is 1)."""
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def check_response(status: int, body: dict[str, Any]) -> None:
    assert status < 500, body
    if status in (200, 207):
        assert body["accepted"] >= 1
    if status != 200:
        if "results" in body:
            assert body["results"], body
            assert all(r["reason"] and r["error"] for r in body["results"])
        else:
            assert body["reason"] and body["error"]


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def _hostile_batches(app: Flask, accepted: list[int], data: st.DataObject) -> None:
    hostile = data.draw(st.lists(hostile_event(), min_size=1, max_size=8))
    valid = data.draw(st.integers(0, 3))
    events: list[object] = [event(params={"i": i}) for i in range(valid)] + hostile
    order = data.draw(st.permutations(range(len(events))))
    batch = [events[i] for i in order]
    # stdlib json: orjson refuses to *encode* more than 254 levels, the server must still cope.
    payload = json.dumps({"events": batch}).encode()
    r = app.test_client().post("/v1/events", data=payload, headers=AUTH)
    body = r.json
    assert body is not None
    check_response(r.status_code, body)
    if _depth({"events": batch}) > MAX_JSON_DEPTH:
        # Nesting beyond the documented bound refuses the request as a whole, nothing processed.
        assert r.status_code == 400 and "nested deeper" in body["reason"], body
        return
    if valid and r.status_code != 413:
        assert body["accepted"] >= valid  # every valid event in the batch is published
    accepted.append(body.get("accepted", 0))


def test_hostile_batches(app: Flask, bus: Bus) -> None:
    accepted: list[int] = []
    _hostile_batches(app, accepted)  # type: ignore[call-arg]
    assert len(bus.events()) == sum(accepted)  # and every acknowledged one is on the topic


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    body=st.one_of(
        st.binary(max_size=2000),  # invalid UTF-8, random bytes
        st.text(max_size=500).map(str.encode),
        json_values.map(orjson.dumps),
        st.integers(1, 3000).map(lambda d: b"[" * d + b"]" * d),  # deep nesting
    ),
    path=st.sampled_from(["/v1/events", "/v1/track", "/v1/batch", "/v1/page", "/v1/b"]),
    encoding=st.sampled_from([None, "gzip", "deflate", "br"]),
    compress=st.booleans(),
)
def _hostile_bodies(
    app: Flask, body: bytes, path: str, encoding: str | None, compress: bool
) -> None:
    if encoding == "gzip" and compress:
        body = gzip.compress(body)
    headers = dict(AUTH)
    if encoding:
        headers["Content-Encoding"] = encoding
    r = app.test_client().post(path, data=body, headers=headers)
    data = r.json
    assert data is not None
    check_response(r.status_code, data)


def test_hostile_bodies(app: Flask, bus: Bus) -> None:
    _hostile_bodies(app)  # type: ignore[call-arg]


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    size_mib=st.integers(1, 16),
    fill=st.sampled_from([b"\x00", b" ", b"[", b'{"events": [']),
)
def _gzip_bombs(app: Flask, size_mib: int, fill: bytes) -> None:
    bomb = gzip.compress(fill * (size_mib * 1024 * 1024 // len(fill)), compresslevel=9)
    r = app.test_client().post(
        "/v1/events", data=bomb, headers={**AUTH, "Content-Encoding": "gzip"}
    )
    assert r.status_code in (400, 413), r.json
    assert r.json["reason"]


def test_gzip_bombs(app: Flask) -> None:
    _gzip_bombs(app)  # type: ignore[call-arg]


def test_valid_events_survive_next_to_every_kind_of_junk(app: Flask, bus: Bus) -> None:
    junk: list[object] = [
        None, 1, "s", [], [1, 2], {}, {"event_type": 5}, {"event_type": "page_view"},
        event(client_timestamp="yesterday"), event(event_id="not-a-uuid"),
        event(items=[{"item_id": ""}]), event(items="nope"), event(value="12"),
        event(currency="usd"), event(params=[1]), event(extra_field=1),
        event(anonymous_id="a" * 300), event(params={"pad": "p" * 40_000}),
        event(client_timestamp="2026-11-26T25:00:00Z"),  # hour 25
    ]  # fmt: skip
    # (a time without an offset is not junk: Analytics.NET's ToString("o") sends one; read as UTC)
    batch = [event(), *junk, event(event_type="view_item")]
    r = app.test_client().post("/v1/events", data=orjson.dumps({"events": batch}), headers=AUTH)
    assert r.status_code == 207
    assert r.json["accepted"] == 2
    assert {x["index"] for x in r.json["results"]} == set(range(1, len(junk) + 1))
    assert all(x["reason"] for x in r.json["results"])
    assert len(bus.events()) == 2
    assert len(bus.bad()) == len(junk)


def test_lone_surrogate_escape_is_a_format_error(app: Flask, bus: Bus) -> None:
    """JSON text with an unpaired \\ud800 escape cannot be represented: the body is refused."""
    body = b'{"events": [{"event_type": "page_view", "anonymous_id": "\\ud800"}]}'
    r = app.test_client().post("/v1/events", data=body, headers=AUTH)
    assert r.status_code == 400
    assert r.json["error"] == "format_error" and "surrogate" in r.json["reason"]
