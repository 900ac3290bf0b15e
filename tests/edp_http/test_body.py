"""Bounded body reading: identity, gzip, deflate (zlib and raw), bombs, corrupt streams."""

from __future__ import annotations

import gzip
import io
import zlib

import pytest

from edp.http.body import BadEncodingError, BodyTooLargeError, read_body

PAYLOAD = b'{"events": [' + b'{"event_type": "page_view"},' * 100 + b"{}]}"


def raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        (None, lambda b: b),
        ("identity", lambda b: b),
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("GZIP", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", raw_deflate),
    ],
)
def test_round_trip(encoding: str | None, encode: object) -> None:
    assert read_body(io.BytesIO(encode(PAYLOAD)), encoding, limit=64 * 1024) == PAYLOAD  # type: ignore[operator]


def test_exact_limit_is_allowed_one_more_byte_is_not() -> None:
    assert read_body(io.BytesIO(b"x" * 1000), None, limit=1000) == b"x" * 1000
    with pytest.raises(BodyTooLargeError):
        read_body(io.BytesIO(b"x" * 1001), None, limit=1000)
    assert read_body(io.BytesIO(gzip.compress(b"y" * 1000)), "gzip", limit=1000) == b"y" * 1000
    with pytest.raises(BodyTooLargeError):
        read_body(io.BytesIO(gzip.compress(b"y" * 1001)), "gzip", limit=1000)


class CountingStream(io.BytesIO):
    """Counts what the reader pulls from the socket."""

    pulled = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.pulled += len(chunk)
        return chunk


def test_bomb_stops_early() -> None:
    c = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # gzip, fast level: ~1:250
    block = b"\0" * (1024 * 1024)
    bomb = b"".join(c.compress(block) for _ in range(128)) + c.flush()  # 128 MiB inflated
    assert len(bomb) > 4 * 64 * 1024
    stream = CountingStream(bomb)
    with pytest.raises(BodyTooLargeError, match="decompressed"):
        read_body(stream, "gzip", limit=512 * 1024)
    assert stream.pulled < len(bomb) // 2  # stopped reading and inflating long before the end


def test_compressed_input_over_the_cap() -> None:
    noise = bytes(range(256)) * 8000  # incompressible-ish, 2 MB
    with pytest.raises(BodyTooLargeError):
        read_body(io.BytesIO(gzip.compress(noise, compresslevel=0)), "gzip", limit=512 * 1024)


@pytest.mark.parametrize(
    ("body", "encoding", "match"),
    [
        (b"plain text", "gzip", "corrupt"),
        (gzip.compress(PAYLOAD, mtime=0)[:-20], "gzip", "truncated|corrupt"),
        (b"\x78\x9c garbage", "deflate", "corrupt|truncated"),
        (b"{}", "br", "unsupported"),
        (b"{}", "gzip, br", "unsupported"),
    ],
)
def test_bad_encodings(body: bytes, encoding: str, match: str) -> None:
    with pytest.raises(BadEncodingError, match=match):
        read_body(io.BytesIO(body), encoding, limit=64 * 1024)
