"""The one bounded request reader of every HTTP function: size, time, encoding, shape, depth.

:class:`BodyReader` reads a request body and refuses it as a whole (a :class:`RequestError`
with a 4xx and a reason, nothing processed) when it is:

* larger than the cap, declared (``Content-Length``) or actual, compressed or decompressed
  (413);
* not received within the read deadline (408; the socket's read side is shut, see
  :mod:`edp.http.deadline`), or there are already too many uploads in progress (503 +
  ``Retry-After``);
* shorter than its ``Content-Length`` (the client gave up: processing it would let the retry
  duplicate events without an id), or malformed on the wire (a broken chunked encoding, a
  server-side read error) (400);
* in an unsupported or corrupt ``Content-Encoding`` (400).

:func:`parse_json` then parses it with a bound on nesting depth, so no later step (pydantic,
serialising the audit record, BigQuery's JSON type) meets a structure it cannot handle.

Example:
    >>> parse_json(b'{"a": [1, {"b": 2}]}', max_depth=3)
    {'a': [1, {'b': 2}]}
    >>> parse_json(b"[[[[]]]]", max_depth=3)
    Traceback (most recent call last):
    ...
    edp.http.reader.TooDeepError: JSON nested deeper than 3 levels
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import IO, Any, Final

import orjson
from flask import Request

from edp.http.body import BodyError, BodyTooLargeError, read_body
from edp.http.deadline import UploadGate, Watchdog
from edp.http.errors import RequestError

DEFAULT_MAX_DEPTH: Final = 64
#: Set in the environ by a server that received the body before the app runs (edp.http.asgi).
BUFFERED: Final = "edp.body_buffered"
_CHUNK: Final = 16 * 1024


class ShortBodyError(BodyError):
    """The body ended before its ``Content-Length``."""


class MalformedBodyError(BodyError):
    """The WSGI server could not read the body (broken chunked encoding, connection reset)."""


class BodyTimeoutError(BodyError):
    """The body was not received within the read deadline."""

    status = 408
    error = "timeout"
    close = True


class UploadsBusyError(RequestError):
    """Every upload slot of this worker is taken (slow clients): retry shortly."""

    status = 503
    error = "busy"
    close = True
    retry_after = "1"


class JsonError(RequestError):
    """The body is not valid JSON (or not UTF-8)."""


class TooDeepError(JsonError):
    """The JSON is nested deeper than the limit."""


class _DeadlineStream:
    """Wraps the WSGI input: counts bytes, maps server read errors, enforces the deadline."""

    def __init__(self, inner: IO[bytes], deadline: float, timeout_s: float) -> None:
        self._inner = inner
        self._deadline = deadline
        self._timeout_s = timeout_s
        self.consumed = 0
        self.timed_out = False

    def read(self, size: int = -1) -> bytes:
        if time.monotonic() > self._deadline:
            self.timed_out = True
            raise BodyTimeoutError(f"request body not received within {self._timeout_s:g} s")
        want = _CHUNK if size is None or size < 0 else min(size, _CHUNK)
        try:
            data = self._inner.read(want)
        except RequestError:  # a buffering server (edp.http.asgi) already knows what went wrong
            raise
        # The WSGI server raises its own types here (gunicorn: InvalidChunkSize, NoMoreData,
        # ChunkMissingTerminator; werkzeug: ClientDisconnected): all mean "this body is broken".
        except Exception as exc:
            if time.monotonic() > self._deadline:
                self.timed_out = True
                raise BodyTimeoutError(
                    f"request body not received within {self._timeout_s:g} s"
                ) from None
            raise MalformedBodyError(
                f"request body could not be read ({type(exc).__name__}: {str(exc)[:120]})"
            ) from None
        self.consumed += len(data)
        return data


@dataclass
class BodyReader:
    """Reads request bodies under the limits of one function.

    Args:
        limit: cap in bytes on the body, compressed and decompressed.
        timeout_s: deadline for receiving the whole body.
        gate: the per-process cap on concurrent uploads (None: no cap).
        watchdog: shuts stalled sockets at the deadline (None: checked between chunks only).
    """

    limit: int
    timeout_s: float = 10.0
    gate: UploadGate | None = None
    watchdog: Watchdog | None = None

    def read(self, request: Request) -> bytes:
        """The decoded body of ``request`` (``b""`` when it has none).

        Raises:
            RequestError: one of this module's subclasses; nothing of the body is processed.
        """
        declared = request.content_length
        encoding = request.headers.get("Content-Encoding")
        chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
        if declared is not None and declared > self.limit and not encoding:
            raise _too_large(f"request body is {declared} bytes; the limit is {self.limit}")
        if not declared and not chunked:
            return b""
        if request.environ.get(BUFFERED):
            # Received by edp.http.asgi under its own deadline and upload cap: decode and check.
            return self._decode(request, encoding, declared)
        sock = request.environ.get("gunicorn.socket")
        sock = sock if isinstance(sock, socket.socket) else None
        ticket = self.gate.enter(sock) if self.gate is not None else None
        if self.gate is not None and ticket is None:
            raise UploadsBusyError(
                f"{self.gate.slots} slow uploads already in progress in this worker; retry"
            )
        deadline = time.monotonic() + self.timeout_s
        entry = self.watchdog.arm(sock, deadline) if self.watchdog is not None else None
        stream = _DeadlineStream(request.stream, deadline, self.timeout_s)
        try:
            body = read_body(stream, encoding, limit=self.limit)  # type: ignore[arg-type]
        except BodyError:
            if ticket is not None and ticket.evicted:
                raise _evicted() from None
            raise
        finally:
            fired = entry is not None and entry.fired
            if entry is not None and self.watchdog is not None:
                self.watchdog.disarm(entry)
            if self.gate is not None and ticket is not None:
                self.gate.leave(ticket)
        if ticket is not None and ticket.evicted and stream.consumed < (declared or 0):
            raise _evicted()
        if fired or stream.timed_out:
            raise BodyTimeoutError(f"request body not received within {self.timeout_s:g} s")
        _check_complete(stream.consumed, declared)
        return body

    def _decode(self, request: Request, encoding: str | None, declared: int | None) -> bytes:
        """A body already in memory: decoded under the cap, checked against its length."""
        stream = _DeadlineStream(request.stream, float("inf"), self.timeout_s)
        body = read_body(stream, encoding, limit=self.limit)  # type: ignore[arg-type]
        _check_complete(stream.consumed, declared)
        return body


def _check_complete(consumed: int, declared: int | None) -> None:
    """Refuse a body that ended before its ``Content-Length`` (RFC 9112 §8: incomplete)."""
    if declared is not None and consumed < declared:
        raise ShortBodyError(
            f"request body ended after {consumed} of its {declared} bytes "
            "(Content-Length); nothing was processed"
        )


def _too_large(reason: str) -> BodyError:
    return BodyTooLargeError(reason)


def _evicted() -> BodyTimeoutError:
    return BodyTimeoutError(
        "request body too slow while every upload slot was taken (the server is busy)"
    )


_CONTAINERS: Final = (dict, list)


def json_depth_exceeds(value: object, max_depth: int) -> bool:
    """True if ``value`` nests arrays/objects deeper than ``max_depth`` levels.

    Example:
        >>> json_depth_exceeds({"a": [1]}, 2), json_depth_exceeds({"a": [[1]]}, 2)
        (False, True)
    """
    # Only containers are pushed, and parsed JSON holds exact dicts and lists, so a type
    # identity test does (a 100-event batch: 0.18 ms, against 0.28 ms with isinstance).
    if type(value) not in _CONTAINERS:
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth = pop()
        if depth > max_depth:
            return True
        for child in node.values() if type(node) is dict else node:
            if type(child) in _CONTAINERS:
                push((child, depth + 1))
    return False


def parse_json(raw: bytes, *, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """Parse ``raw`` as JSON, refusing nesting deeper than ``max_depth``.

    Raises:
        JsonError: not JSON (or not UTF-8, or an unpaired surrogate escape).
        TooDeepError: nested deeper than ``max_depth``.
    """
    value = _loads(raw, max_depth)
    # Cheap exact pre-check: fewer openers than the limit cannot nest deeper than it.
    if raw.count(b"[") + raw.count(b"{") > max_depth and json_depth_exceeds(value, max_depth):
        raise TooDeepError(f"JSON nested deeper than {max_depth} levels")
    return value


def _loads(raw: bytes, max_depth: int) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):  # orjson's own bound (1024) is deeper than ours
            raise TooDeepError(f"JSON nested deeper than {max_depth} levels") from None
        raise JsonError(f"body is not valid JSON: {exc}") from None


__all__ = [
    "BUFFERED",
    "DEFAULT_MAX_DEPTH",
    "BodyReader",
    "BodyTimeoutError",
    "JsonError",
    "MalformedBodyError",
    "ShortBodyError",
    "TooDeepError",
    "UploadsBusyError",
    "json_depth_exceeds",
    "parse_json",
]
