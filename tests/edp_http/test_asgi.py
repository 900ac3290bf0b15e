"""GreenletWSGI under a real uvicorn server on loopback: a flask app sees the request as a WSGI
server would show it, bodies are bounded in size, time and number, and I/O awaited from a view
lets the other requests go on (one thread)."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from flask import Flask, Response, jsonify, request
from tests.asgi_server import serving

from edp.http.asgi import EVICT_AFTER_S, GreenletWSGI
from edp.http.bridge import await_only
from edp.http.errors import RequestError
from edp.http.reader import BodyReader

LIMIT = 1000
TIMEOUT_S = 0.5


class _Probe:
    """What the views saw: threads, concurrency, shutdown."""

    def __init__(self) -> None:
        self.threads: set[int] = set()
        self.running = 0
        self.most = 0
        self.shutdown: list[str] = []


def _flask_app(probe: _Probe) -> Flask:
    app = Flask("asgi-test")
    reader = BodyReader(LIMIT, timeout_s=TIMEOUT_S)

    @app.route("/echo", methods=["GET", "POST"])
    def echo() -> Response:
        try:
            body = reader.read(request)
        except RequestError as exc:
            response = jsonify(error=exc.error, reason=exc.reason)
            response.status_code = exc.status
            if exc.close:
                response.headers["Connection"] = "close"
            if exc.retry_after:
                response.headers["Retry-After"] = exc.retry_after
            return response
        return jsonify(
            method=request.method,
            path=request.path,
            args=request.args.to_dict(flat=False),
            accept=request.headers.get("Accept"),
            remote=request.remote_addr,
            body=body.decode(),
        )

    @app.post("/wait")
    def wait() -> Response:
        probe.threads.add(threading.get_ident())
        probe.running += 1
        probe.most = max(probe.most, probe.running)
        await_only(asyncio.sleep(0.2))
        probe.running -= 1
        return jsonify(ok=True)

    @app.get("/boom")
    def boom() -> Response:
        raise RuntimeError("a bug in a view")

    return app


class _Served:
    def __init__(self, port: int, probe: _Probe, server: uvicorn.Server) -> None:
        self.port = port
        self.probe = probe
        self.server = server

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()


@pytest.fixture
def served() -> Iterator[_Served]:
    probe = _Probe()
    app = GreenletWSGI(
        _flask_app(probe).wsgi_app,
        body_limit=LIMIT,
        body_timeout_s=TIMEOUT_S,
        max_uploads=1,
        on_shutdown=[lambda: probe.shutdown.append("closed")],
    )
    with serving(app) as (port, server):
        yield _Served(port, probe, server)


def test_the_view_sees_method_path_query_headers_peer_and_body(served: _Served) -> None:
    status, _, body = served.request(
        "POST", "/echo?a=1&a=2&b=%C3%A9", b'{"x": 1}', {"Accept": "application/json"}
    )
    assert status == 200
    assert json.loads(body) == {
        "method": "POST",
        "path": "/echo",
        "args": {"a": ["1", "2"], "b": ["é"]},
        "accept": "application/json",
        "remote": "127.0.0.1",
        "body": '{"x": 1}',
    }


def test_a_chunked_body_is_received_whole(served: _Served) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
    conn.request("POST", "/echo", body=iter([b"ab", b"cd", b"ef"]), encode_chunked=True)
    response = conn.getresponse()
    assert response.status == 200
    assert b'"body":"abcdef"' in response.read()
    conn.close()


def test_a_body_over_the_cap_is_refused_413_and_the_connection_closed(served: _Served) -> None:
    status, headers, _ = served.request("POST", "/echo", b"x" * (LIMIT + 1))
    assert status == 413
    assert headers.get("connection") == "close"
    status, _, _ = served.request("POST", "/echo", b"x" * LIMIT)  # exactly the cap: accepted
    assert status == 200


def test_a_declared_length_over_the_cap_is_refused_without_reading(served: _Served) -> None:
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n" + b"x" * 10
        )
        head = sock.recv(65536)
    assert head.startswith(b"HTTP/1.1 413 ")


def test_a_stalled_body_is_answered_408_at_the_deadline(served: _Served) -> None:
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
        head = sock.recv(65536)
    assert head.startswith(b"HTTP/1.1 408 ")
    assert b"not received within 0.5 s" in head


def test_uploads_beyond_the_cap_are_refused_503_busy(served: _Served) -> None:
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as staller:
        staller.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nxx")
        time.sleep(0.1)  # its body is being received: the one upload slot is taken
        status, headers, body = served.request("POST", "/echo", b"{}")
        assert status == 503
        assert headers.get("retry-after") == "1"
        assert b"busy" in body
        assert staller.recv(65536).startswith(b"HTTP/1.1 408 ")
    assert served.request("POST", "/echo", b"{}")[0] == 200  # the slot is free again


def test_a_newcomer_evicts_an_upload_stalled_past_the_hold_time(served: _Served) -> None:
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as staller:
        staller.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nxx")
        time.sleep(EVICT_AFTER_S + 0.1)  # held long enough to be evicted
        assert served.request("POST", "/echo", b"{}")[0] == 200
        answer = staller.recv(65536)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"every upload slot was taken" in answer


def test_views_awaiting_io_overlap_on_one_thread(served: _Served) -> None:
    results: list[int] = []

    def client() -> None:
        results.append(served.request("POST", "/wait", b"{}")[0])

    clients = [threading.Thread(target=client) for _ in range(5)]
    for c in clients:
        c.start()
    for c in clients:
        c.join(10)
    assert results == [200] * 5
    assert len(served.probe.threads) == 1
    assert served.probe.most > 1  # a second request ran while the first awaited


def test_a_failing_view_is_flasks_500_and_the_server_goes_on(served: _Served) -> None:
    assert served.request("GET", "/boom")[0] == 500
    assert served.request("GET", "/echo")[0] == 200


def test_lifespan_shutdown_runs_the_hooks(served: _Served) -> None:
    served.server.should_exit = True
    deadline = time.monotonic() + 10
    while not served.probe.shutdown and time.monotonic() < deadline:
        time.sleep(0.01)
    assert served.probe.shutdown == ["closed"]
