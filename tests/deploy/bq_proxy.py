"""A recording proxy in front of the BigQuery REST emulator, covering one of its gaps.

bqemulator 1.4.0 does not bind query parameters inside multi-statement scripts (measured by the
warehouse contract suite) and cannot parse a parameter as ``TIMESTAMP(expr, @tz)``'s zone, while
BigQuery does both. The proxy inlines each script job's ``queryParameters`` as typed literals
(``@start`` -> ``DATE '2026-11-22'``) before forwarding, so the ETL's real scripts run; every
request body is recorded as the client sent it, so tests can check what the production code
asks BigQuery for (``maximumBytesBilled`` on every job, parameters typed).
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from edp_tools.local.processes import free_port

_HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "accept-encoding"}


def _literal(ptype: dict[str, Any], pvalue: dict[str, Any]) -> str:
    kind = ptype["type"]
    if kind == "ARRAY":
        inner = ptype["arrayType"]
        items = [_literal(inner, v) for v in pvalue.get("arrayValues", [])]
        return f"ARRAY<{inner['type']}>[{', '.join(items)}]"
    value = pvalue.get("value")
    if value is None:
        return f"CAST(NULL AS {kind})"
    if kind in {"INT64", "FLOAT64", "NUMERIC", "BIGNUMERIC"}:
        return f"CAST({value} AS {kind})" if kind != "INT64" else str(int(value))
    if kind == "BOOL":
        return "TRUE" if str(value).lower() == "true" else "FALSE"
    escaped = str(value).replace("\\", "\\\\").replace("'", "\\'")
    if kind == "STRING":
        return f"'{escaped}'"
    return f"{kind} '{escaped}'"


def inline_parameters(query: str, parameters: list[dict[str, Any]]) -> str:
    """``query`` with every ``@name`` replaced by its parameter's typed literal.

    Example:
        >>> inline_parameters(
        ...     "SELECT @d; SELECT @tz",
        ...     [{"name": "d", "parameterType": {"type": "DATE"},
        ...       "parameterValue": {"value": "2026-11-22"}},
        ...      {"name": "tz", "parameterType": {"type": "STRING"},
        ...       "parameterValue": {"value": "Asia/Seoul"}}])
        "SELECT DATE '2026-11-22'; SELECT 'Asia/Seoul'"
    """
    values = {p["name"]: _literal(p["parameterType"], p["parameterValue"]) for p in parameters}
    return re.sub(r"@(\w+)\b", lambda m: values.get(m.group(1), m.group(0)), query)


class BigQueryProxy:
    """``with BigQueryProxy(upstream) as url:`` — forward to ``upstream``, record every body."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests: list[tuple[str, str, Any]] = []  # (method, path, json body or None)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def jobs(self) -> list[dict[str, Any]]:
        """Bodies of every query job the client inserted (jobs.insert and jobs.query)."""
        with self._lock:
            return [
                body
                for method, path, body in self.requests
                if method == "POST" and re.search(r"/jobs$|/queries$", path) and body
            ]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body: Any = None
                if raw and "json" in (self.headers.get("Content-Type") or ""):
                    body = json.loads(raw)
                with proxy._lock:
                    proxy.requests.append((self.command, self.path.split("?")[0], body))
                if isinstance(body, dict):
                    query = body.get("configuration", {}).get("query", body)
                    params = query.get("queryParameters")
                    if params and ";" in str(query.get("query", "")).strip().rstrip(";"):
                        query["query"] = inline_parameters(query["query"], params)
                        query.pop("queryParameters")
                        query.pop("parameterMode", None)
                    raw = json.dumps(body).encode()
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
                upstream = httpx.request(
                    self.command,
                    proxy.upstream + self.path,
                    content=raw,
                    headers=headers,
                    timeout=120,
                )
                self.send_response(upstream.status_code)
                for key, value in upstream.headers.items():
                    if key.lower() not in _HOP_HEADERS | {"content-encoding"}:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(upstream.content)))
                self.end_headers()
                self.wfile.write(upstream.content)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        return Handler

    def __enter__(self) -> BigQueryProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
