"""Hostile bytes over real HTTP against the function as Cloud Run serves it.

Expected behaviour, from the HTTP/1.1 specification (RFC 9112) and the API's contract:

* RFC 9112 §8: a body that ends before its ``Content-Length`` is an *incomplete message*; the
  server must not treat it as complete -> refused, nothing published. On an open connection
  the server learns the body is short when the rest never comes: at the body deadline (408).
  A client that half-closes instead gets the connection closed without an answer (uvicorn; see
  ``served.py``), and nothing published either.
* RFC 9112 §7.1: ``chunk-size`` is hexadecimal digits followed by CRLF; ``zz`` is not one ->
  the message is malformed (400).
* The ingest contract (README "Ingest API"): client input never yields a 5xx; every event of a
  207/200 answer is on the events topic; a body nested deeper than ``EDP_MAX_JSON_DEPTH`` (64) is
  refused whole with the reason.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from .conftest import AUTH, WRITE_KEY, Bus, event
from .served import functions_framework, raw_exchange, raw_response, request_bytes

pytestmark = pytest.mark.slow


@pytest.fixture
def port(bus: Bus, tmp_path: Path) -> Iterator[int]:
    with functions_framework(bus, tmp_path / "ff.log", EDP_BODY_READ_TIMEOUT_SEC="1") as p:
        yield p


def test_short_body_is_refused_and_nothing_is_published(port: int, bus: Bus) -> None:
    body = orjson.dumps([event(), event()])  # no event_id: a retry would duplicate them
    data = request_bytes("/v1/events", body, AUTH, content_length=len(body) + 500)
    assert raw_exchange(port, data) == 408  # the other 500 bytes never came
    assert raw_exchange(port, data, half_close=True) == 0  # closed, never acknowledged
    assert bus.events() == []


def test_malformed_chunked_body_is_refused(port: int, bus: Bus) -> None:
    headers = {**AUTH, "Transfer-Encoding": "chunked"}
    bad_size = request_bytes("/v1/events", b"zz\r\n{}\r\n0\r\n\r\n", headers)
    cut_off = request_bytes("/v1/events", b"400\r\n" + orjson.dumps(event()), headers)
    assert raw_exchange(port, bad_size) == 400
    assert raw_exchange(port, cut_off) == 408  # the rest of the chunk never came
    assert raw_exchange(port, cut_off, half_close=True) == 0
    assert bus.events() == []


def test_deep_json_is_400_not_500(port: int) -> None:
    for depth in (65, 1_000, 50_000):  # 50k levels: 300 KB, under the size cap
        body = orjson.dumps(event())[:-1] + b',"params":' + b'{"a":' * depth + b"1" + b"}" * depth
        body += b"}"
        data = request_bytes("/v1/events", body, AUTH, content_length=len(body))
        assert raw_exchange(port, data) == 400, depth


def test_timestamp_overflow_is_no_5xx_and_loses_nothing(port: int, bus: Bus) -> None:
    """received_at - (sent_at - client_ts) leaves datetime's range: no 500; by the analytics
    rule the event is kept at received_at (client value in params), the other one too."""
    overflow = event(
        event_id="1f2e3d4c-5b6a-4798-8a9b-0c1d2e3f4a5b",
        client_timestamp="0001-01-01T00:00:00Z",
        sent_at="9999-12-31T23:59:59Z",
    )
    good = event(event_id="7d0c4f4e-7f0a-4f43-9d53-6c1e7f0a9b21")
    body = orjson.dumps({"events": [good, overflow]})
    data = request_bytes("/v1/events", body, AUTH, content_length=len(body))
    assert raw_exchange(port, data) == 200
    published = {e["event_id"]: e for e in bus.events()}
    assert set(published) == {good["event_id"], overflow["event_id"]}
    assert (
        published[overflow["event_id"]]["event_timestamp"]
        == published[overflow["event_id"]]["received_at"]
    )


ROUTES = ["/v1/events", "/v1/track", "/v1/page", "/v1/batch", "/v1/b", "/beacon/v1/batch"]


@st.composite
def hostile_request(draw: st.DrawFn) -> tuple[bytes, int, bool]:
    """A request on some route with some body, encoding, framing; + how many valid events are
    inside and whether the message is complete (an incomplete one is sent half-closed, so the
    server sees its end at once instead of at the body deadline)."""
    valid = draw(st.integers(0, 3))
    junk = draw(
        st.lists(
            st.one_of(
                st.just(event(client_timestamp=12345)),
                st.just(event(client_timestamp="+10000-01-01T00:00:00Z")),
                st.just(event(sent_at="9999-12-31T23:59:59Z", client_timestamp="0001-01-01")),
                st.just({"event_type": "page_view"}),
                st.just("x" * 100),
            ),
            max_size=3,
        )
    )
    events = [event(params={"i": i}) for i in range(valid)] + junk
    path = draw(st.sampled_from(ROUTES))
    if path == "/v1/events":
        body = orjson.dumps({"events": events})
    else:
        messages = [
            {"type": "track", "event": "Product Viewed", "anonymousId": "a", "properties": {}}
            for _ in range(valid)
        ]
        body = orjson.dumps({"batch": messages + junk, "writeKey": WRITE_KEY})
        valid = len(messages)
    body = draw(st.sampled_from([body, body[: len(body) // 2], b"\xff\xfe" + body, b""]))
    encoding = draw(st.sampled_from([None, "gzip", "deflate", "br", "gzip, gzip"]))
    headers = dict(AUTH) if draw(st.booleans()) else {}
    if encoding in ("gzip", "deflate") and draw(st.booleans()):
        body = gzip.compress(body) if encoding == "gzip" else zlib.compress(body)
    if encoding:
        headers["Content-Encoding"] = encoding
    framing = draw(st.sampled_from(["length", "short", "chunked", "broken-chunked"]))
    if framing == "length":
        return request_bytes(path, body, headers, content_length=len(body)), valid, True
    if framing == "short":
        return request_bytes(path, body, headers, content_length=len(body) + 10), 0, False
    headers["Transfer-Encoding"] = "chunked"
    chunked = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    if framing == "broken-chunked":
        return request_bytes(path, chunked[:-7], headers), 0, False
    return request_bytes(path, chunked, headers), valid, True


def _framed(body: object, headers: dict[str, str], valid: int) -> tuple[bytes, int, bool]:
    raw = orjson.dumps(body)
    return request_bytes("/v1/events", raw, headers, content_length=len(raw)), valid, True


def test_no_5xx_and_no_lost_valid_event_over_http(port: int, bus: Bus) -> None:
    accepted: list[int] = []
    statuses: list[int] = []

    @settings(
        max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
    )
    @given(hostile_request())
    # Sure cases of 207 and 400 (the draws may miss them): valid events next to junk, and junk.
    @example(_framed({"events": [event(), {"event_type": "page_view"}]}, AUTH, 1))
    @example(_framed({"events": [{"event_type": "page_view"}]}, AUTH, 0))
    def run(case: tuple[bytes, int, bool]) -> None:
        data, valid, complete = case
        status, body = raw_response(port, data, half_close=not complete)
        if not complete:
            assert status == 0, (status, body)  # closed unanswered: nothing acknowledged
            return
        assert 0 < status < 500, (status, body)
        statuses.append(status)
        if status in (200, 207):
            answer = orjson.loads(body)
            accepted.append(answer["accepted"])
            assert answer["accepted"] >= valid, answer  # valid events next to junk get in

    run()
    published = bus.events()
    # Every acknowledged event is on the topic, exactly once.
    assert len(published) == sum(accepted)
    assert len({e["event_id"] for e in published}) == len(published)
    assert 207 in statuses and 400 in statuses, str(sorted(statuses))
