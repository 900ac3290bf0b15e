"""A WSGI app served from an event loop: the body read asynchronously, the app run in a greenlet.

:class:`GreenletWSGI` is an ASGI application around a WSGI one (flask). For each request it

1. receives the body from the ASGI server, bounded: a declared ``Content-Length`` over the cap
   is not read at all, an actual body is read to at most cap + 1 bytes, and all of it must
   arrive within the read deadline; only ``max_uploads`` bodies are received at once (when
   all are taken, a newcomer evicts the oldest stalled one);
2. builds the WSGI environ with that body in memory (``edp.body_buffered``), and any reason the
   body is incomplete (deadline, disconnect, busy) raised by the input stream, so the app's
   :class:`~edp.http.reader.BodyReader` refuses it with the same status and reason as under a
   WSGI server;
3. runs the app in a greenlet (:func:`~edp.http.bridge.run_sync`): the app's own blocking I/O
   (the ingest Publish RPC) is awaited through :func:`~edp.http.bridge.await_only`, so one
   thread serves every request of the worker.

Slow clients cost a coroutine and their bytes so far, not a thread: the read deadline and the
upload cap bound both. ``lifespan`` shutdown runs the ``on_shutdown`` callables (flush and close
the publisher) after the server has finished in-flight requests.
"""

from __future__ import annotations

import asyncio
import io
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any, Final

from edp.http.bridge import run_sync
from edp.http.errors import RequestError
from edp.http.reader import BUFFERED, BodyTimeoutError, MalformedBodyError, UploadsBusyError

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

#: An upload that has held its slot this long may be evicted by a newcomer when all are taken:
#: a body already in the buffers arrives in microseconds, so fast clients get through while
#: stalled uploads push each other out (the same policy as edp.http.deadline.UploadGate).
EVICT_AFTER_S: Final = 0.2
_SERVER_ERROR: Final = b'{"error":"internal","reason":"internal server error"}'


class _Upload:
    """A body being received: since when, and its deadline (to end it early when evicted)."""

    __slots__ = ("evicted", "since", "timeout")

    def __init__(self, since: float) -> None:
        self.since = since
        self.evicted = False
        self.timeout: asyncio.Timeout | None = None

    def evict(self) -> None:
        self.evicted = True
        if self.timeout is not None:
            self.timeout.reschedule(asyncio.get_running_loop().time())


class _BufferedInput(io.RawIOBase):
    """The received body; raises ``error`` once it is used up, if the body was incomplete."""

    def __init__(self, data: bytes, error: RequestError | None) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self._error = error

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        end = len(self._data) if size is None or size < 0 else self._pos + size
        chunk = bytes(self._data[self._pos : end])
        self._pos += len(chunk)
        if not chunk and self._error is not None and size != 0:
            raise self._error
        return chunk


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def wsgi_environ(scope: Scope, body: io.RawIOBase) -> dict[str, Any]:
    """The PEP 3333 environ of an ASGI HTTP ``scope`` (headers joined as a WSGI server would)."""
    server = scope.get("server") or ("localhost", 80)
    client = scope.get("client") or ("", 0)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": scope.get("root_path", "").encode().decode("latin-1"),
        "PATH_INFO": scope["path"].encode().decode("latin-1"),
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1]) if server[1] is not None else "80",
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "REMOTE_ADDR": client[0],
        "REMOTE_PORT": str(client[1]),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": body,
        # The body is all in memory: werkzeug may read a chunked one to its end.
        "wsgi.input_terminated": True,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        BUFFERED: True,
    }
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        value = raw_value.decode("latin-1")
        key = name if name in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{name}"
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


class GreenletWSGI:
    """ASGI app serving ``wsgi_app`` (see the module docstring).

    Args:
        wsgi_app: the WSGI application.
        body_limit: bytes received at most per body (the app's own cap; one more byte tells it
            the body is over).
        body_timeout_s: deadline for receiving a whole body.
        max_uploads: bodies received at once; a newcomer evicts the oldest held at least
            ``EVICT_AFTER_S`` (refused ``408``), or is refused ``503`` + ``Retry-After``.
        on_shutdown: callables run (in a greenlet, in order) at lifespan shutdown.
    """

    def __init__(
        self,
        wsgi_app: Callable[..., Iterable[bytes]],
        *,
        body_limit: int,
        body_timeout_s: float,
        max_uploads: int,
        on_shutdown: Iterable[Callable[[], object]] = (),
    ) -> None:
        self.wsgi_app = wsgi_app
        self.body_limit = body_limit
        self.body_timeout_s = body_timeout_s
        self.max_uploads = max_uploads
        self.on_shutdown = list(on_shutdown)
        self._uploads: list[_Upload] = []  # oldest first

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            raise ValueError(f"unsupported ASGI scope type {scope['type']!r}")
        status, headers, body = await self.respond(scope, receive)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def respond(self, scope: Scope, receive: Receive) -> tuple[int, Headers, bytes]:
        """Status, headers and body of the app's answer to this request."""
        data, error = await self._receive_body(scope, receive)
        environ = wsgi_environ(scope, _BufferedInput(data, error))
        try:
            return await run_sync(self._call, environ)
        except Exception:  # the WSGI app itself failed (flask answers its own errors)
            log.exception("%s %s failed", scope["method"], scope["path"])
            return 500, [(b"content-type", b"application/json")], _SERVER_ERROR

    async def _receive_body(  # noqa: PLR0911 - one return per way a body ends
        self, scope: Scope, receive: Receive
    ) -> tuple[bytes, RequestError | None]:
        declared = _header(scope, b"content-length")
        chunked = b"chunked" in (_header(scope, b"transfer-encoding") or b"").lower()
        if declared is None and not chunked:
            return b"", None
        if declared is not None and declared.isdigit():
            length = int(declared)
            if length == 0:
                return b"", None
            if length > self.body_limit and _header(scope, b"content-encoding") is None:
                return b"", None  # refused by its declared length; nothing to read
        upload = self._enter_upload()
        if upload is None:
            return b"", UploadsBusyError(
                f"{self.max_uploads} slow uploads already in progress in this worker; retry"
            )
        parts: list[bytes] = []
        total = 0
        try:
            async with asyncio.timeout(self.body_timeout_s) as upload.timeout:
                while total <= self.body_limit:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return b"".join(parts), MalformedBodyError(
                            "the client disconnected before the body ended"
                        )
                    chunk = message.get("body", b"")
                    parts.append(chunk)
                    total += len(chunk)
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            if upload.evicted:
                return b"".join(parts), BodyTimeoutError(
                    "request body too slow while every upload slot was taken (the server is busy)"
                )
            return b"".join(parts), BodyTimeoutError(
                f"request body not received within {self.body_timeout_s:g} s"
            )
        finally:
            if upload in self._uploads:
                self._uploads.remove(upload)
        return b"".join(parts), None

    def _enter_upload(self) -> _Upload | None:
        """A slot to receive a body in, evicting the oldest upload held ``EVICT_AFTER_S`` when
        every slot is taken (its read ends at once: 408); None if none can be evicted."""
        now = time.monotonic()
        if len(self._uploads) >= self.max_uploads:
            victim = next((u for u in self._uploads if now - u.since >= EVICT_AFTER_S), None)
            if victim is None:
                return None
            victim.evict()
            self._uploads.remove(victim)
        upload = _Upload(now)
        self._uploads.append(upload)
        return upload

    def _call(self, environ: dict[str, Any]) -> tuple[int, Headers, bytes]:
        """Run the WSGI app (in the request's greenlet) and collect its whole answer."""
        started: list[Any] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            started[:] = [status, headers]
            return lambda data: None  # the legacy write() callable: flask never uses it

        result = self.wsgi_app(environ, start_response)
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status, headers = started
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        return int(status[:3]), raw, body

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for hook in self.on_shutdown:
                    try:
                        await run_sync(hook)
                    except Exception:  # one failing hook must not skip the others
                        log.exception("shutdown hook %r failed", hook)
                await send({"type": "lifespan.shutdown.complete"})
                return


__all__ = ["GreenletWSGI", "wsgi_environ"]
