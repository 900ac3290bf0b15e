"""Serving a flask app behind gunicorn without letting an unread body hold a thread.

Two things in the servers undo the bounded reader's guards when a request is answered before
its body was read to the end (a refusal, a stalled upload):

* functions-framework registers an after-request hook (``read_request``) that reads the
  *whole* body before answering: a stalled upload would block the thread until the client
  finishes, and a broken chunked body raises again outside any error handler (a 500);
* gunicorn (gthread) ignores an application's ``Connection: close`` and, to keep the connection
  alive, drains the unread body (up to 5 s in the worker thread); closing, it lingers up to 2 s
  more on the read side *in its main loop*, which accepts every connection of the worker.

So :class:`GuardedInput` counts what the app read; once the app has answered, an unfinished
body is abandoned: the stream reports end-of-file to any later reader, and the socket's read
side is shut (``gunicorn.socket``), so gunicorn's drain and linger end at once and the
connection closes. :func:`dispatch` does this for a functions-framework entry point,
:class:`BodyGuard` for a plain WSGI deployment (the GKE collector).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterable
from typing import IO, Any

from flask import Flask, Request, Response

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class GuardedInput:
    """A body stream that counts bytes, notes end-of-file, and can be abandoned."""

    def __init__(self, inner: IO[bytes], environ: dict[str, Any]) -> None:
        self._inner: IO[bytes] | None = inner
        self._environ = environ
        self.consumed = 0
        self.eof = False

    def read(self, size: int = -1) -> bytes:
        if self._inner is None:
            return b""
        data = self._inner.read(size)
        self.consumed += len(data)
        if not data or (size is not None and size >= 0 and len(data) < size):
            self.eof = self.eof or not data
        return data

    def readline(self, size: int = -1) -> bytes:
        if self._inner is None:
            return b""
        data = self._inner.readline(size)
        self.consumed += len(data)
        self.eof = self.eof or not data
        return data

    def complete(self) -> bool:
        """True if the body was read to its end (or there was none)."""
        declared = self._environ.get("CONTENT_LENGTH")
        if declared:
            try:
                return self.consumed >= int(declared)
            except ValueError:
                return False
        if "chunked" in self._environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            return self.eof
        return True

    def abandon(self) -> None:
        """Stop reading: later reads see end-of-file; an unfinished body's socket is shut."""
        unfinished = not self.complete()
        self._inner = None
        if not unfinished:
            return
        sock = self._environ.get("gunicorn.socket")
        if isinstance(sock, socket.socket):
            try:
                sock.shutdown(socket.SHUT_RD)
            except OSError as exc:  # the client is gone already
                log.debug("could not shut an abandoned body's socket: %s", exc)


def dispatch(app: Flask, request: Request) -> Response:
    """Run ``app`` on the functions-framework ``request``; its body is read at most once."""
    environ: dict[str, Any] = dict(request.environ)
    stream = GuardedInput(request.stream, environ)
    request.stream = stream  # type: ignore[assignment]  # werkzeug's cached_property is settable
    environ["wsgi.input"] = stream
    environ["wsgi.input_terminated"] = True
    try:
        with app.request_context(environ):
            return app.full_dispatch_request()
    finally:
        stream.abandon()


class BodyGuard:
    """WSGI middleware: abandon a body the app left unread once it has answered."""

    def __init__(self, app: WsgiApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        stream = GuardedInput(environ["wsgi.input"], environ)
        environ["wsgi.input"] = stream
        try:
            return self.app(environ, start_response)
        finally:
            stream.abandon()


__all__ = ["BodyGuard", "GuardedInput", "dispatch"]
