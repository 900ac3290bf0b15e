"""Serving an inner flask app from a functions-framework entry point, body reading included.

functions-framework registers an after-request hook (``read_request``) that reads the *whole*
request body before answering, "to avoid connection errors when returning prematurely". That
undoes every guard of the bounded reader: a refused stalled upload would block the thread until
the client finishes, and a broken chunked body would raise again outside any error handler
(a 500). :func:`dispatch` hands the inner app the request's stream and, once the inner app
has answered, ends that stream, so the hook reads nothing more; the WSGI server then closes the
connection (``Connection: close`` on refusals) or drains what is left under its own deadline.
"""

from __future__ import annotations

from typing import IO, Any

from flask import Flask, Request, Response


class _EndableStream:
    """A body stream that reads from ``inner`` until :meth:`end`, then reports end-of-file."""

    def __init__(self, inner: IO[bytes]) -> None:
        self._inner: IO[bytes] | None = inner

    def read(self, size: int = -1) -> bytes:
        if self._inner is None:
            return b""
        return self._inner.read(size)

    def readline(self, size: int = -1) -> bytes:
        if self._inner is None:
            return b""
        return self._inner.readline(size)

    def end(self) -> None:
        self._inner = None


def dispatch(app: Flask, request: Request) -> Response:
    """Run ``app`` on the functions-framework ``request``; its body is read at most once."""
    stream = _EndableStream(request.stream)
    request.stream = stream  # type: ignore[assignment]  # werkzeug's cached_property is settable
    environ: dict[str, Any] = {
        **request.environ,
        "wsgi.input": stream,
        "wsgi.input_terminated": True,
    }
    try:
        with app.request_context(environ):
            return app.full_dispatch_request()
    finally:
        stream.end()


__all__ = ["dispatch"]
