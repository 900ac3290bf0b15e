"""Reading request bodies with hard size caps, gzip/deflate included (gzip-bomb safe).

The body is read from the WSGI input stream in chunks and decompressed incrementally with
``zlib.decompressobj(...).decompress(chunk, max_length)``, so neither the compressed nor the
decompressed size can exceed the cap by more than one chunk, whatever the client claims in
``Content-Length``: a 1 KB gzip that inflates to 1 GB costs at most ``limit + 1`` bytes of memory.

Example:
    >>> import gzip, io
    >>> read_body(io.BytesIO(gzip.compress(b'{"a": 1}')), "gzip", limit=1024)
    b'{"a": 1}'
"""

from __future__ import annotations

import io
import zlib
from typing import IO

from edp.http.errors import RequestError

_CHUNK = 64 * 1024
# wbits for zlib.decompressobj: gzip wrapper, zlib wrapper, raw deflate.
_GZIP_WBITS = 16 + zlib.MAX_WBITS
_ZLIB_WBITS = zlib.MAX_WBITS
_RAW_WBITS = -zlib.MAX_WBITS


class BodyError(RequestError):
    """The body cannot be read; ``failure_type`` says which Snowplow-style failure it is."""


class BodyTooLargeError(BodyError):
    """The body (compressed or decompressed) exceeds the size cap."""

    error = "size_violation"
    status = 413
    close = True  # the rest of the body was not read


class BadEncodingError(BodyError):
    """Unsupported ``Content-Encoding`` or a corrupt compressed stream."""


def _read_capped(stream: IO[bytes], limit: int) -> bytes:
    """Read at most ``limit`` bytes of ``stream``; raise BodyTooLargeError if there is more."""
    parts: list[bytes] = []
    total = 0
    while True:
        chunk = stream.read(min(_CHUNK, limit + 1 - total))
        if not chunk:
            break
        parts.append(chunk)
        total += len(chunk)
        if total > limit:
            raise BodyTooLargeError(f"request body exceeds {limit} bytes")
    return b"".join(parts)


def _inflate(stream: IO[bytes], wbits: int, limit: int) -> bytes:
    """Decompress ``stream`` incrementally, refusing output beyond ``limit`` bytes.

    The compressed input is capped at ``limit`` as well (a compressed body larger than the
    decompressed cap is pointless and only costs CPU).
    """
    decoder = zlib.decompressobj(wbits)
    out: list[bytes] = []
    produced = 0
    consumed = 0
    try:
        while True:
            chunk = stream.read(_CHUNK)
            if not chunk:
                break
            consumed += len(chunk)
            if consumed > limit:
                raise BodyTooLargeError(f"compressed request body exceeds {limit} bytes")
            data = chunk
            while data:
                piece = decoder.decompress(data, limit + 1 - produced)
                produced += len(piece)
                out.append(piece)
                if produced > limit:
                    raise BodyTooLargeError(f"decompressed request body exceeds {limit} bytes")
                data = decoder.unconsumed_tail
                if decoder.eof:
                    break
            if decoder.eof:
                break
        tail = decoder.flush(limit + 1 - produced) if not decoder.eof else b""
    except zlib.error as exc:
        raise BadEncodingError(f"corrupt compressed body: {exc}") from None
    produced += len(tail)
    out.append(tail)
    if produced > limit:
        raise BodyTooLargeError(f"decompressed request body exceeds {limit} bytes")
    if not decoder.eof:
        raise BadEncodingError("truncated compressed body")
    return b"".join(out)


def read_body(stream: IO[bytes], content_encoding: str | None, *, limit: int) -> bytes:
    """The request body, decompressed, at most ``limit`` bytes.

    Args:
        stream: the raw (possibly compressed) request body.
        content_encoding: the ``Content-Encoding`` header (``gzip``, ``x-gzip``, ``deflate``,
            ``identity`` or empty).
        limit: cap on the compressed and on the decompressed size, in bytes.

    Returns:
        The decoded body bytes.

    Raises:
        BodyTooLargeError: more than ``limit`` bytes before or after decompression.
        BadEncodingError: unknown encoding or a corrupt/truncated compressed stream.

    Example:
        >>> import io
        >>> read_body(io.BytesIO(b"x" * 10), None, limit=5)
        Traceback (most recent call last):
        ...
        edp.http.body.BodyTooLargeError: request body exceeds 5 bytes
    """
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("", "identity"):
        return _read_capped(stream, limit)
    if encoding in ("gzip", "x-gzip"):
        return _inflate(stream, _GZIP_WBITS, limit)
    if encoding == "deflate":
        # RFC 9110 "deflate" is the zlib format; some clients send raw deflate. Try zlib first.
        raw = _read_capped(stream, limit)
        try:
            return _inflate(io.BytesIO(raw), _ZLIB_WBITS, limit)
        except BadEncodingError:
            return _inflate(io.BytesIO(raw), _RAW_WBITS, limit)
    raise BadEncodingError(f"unsupported Content-Encoding {content_encoding!r}")
