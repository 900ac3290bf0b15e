"""Vectorised string columns: millions of UUIDs and ids without a Python loop.

Each helper writes the characters into one numpy byte matrix and wraps it as an Arrow string
array with fixed-width offsets (zero copy), which is ~50x faster than formatting in Python.

Example:
    >>> import numpy as np
    >>> zero_padded_ids("u", np.array([7, 1234]), 6).to_pylist()
    ['u000007', 'u001234']
    >>> len(uuid4_strings(np.random.default_rng(0), 2)[0].as_py())
    36
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa

_HEX_PAIRS = np.array(
    [int.from_bytes(f"{i:02x}".encode("ascii"), "little") for i in range(256)], dtype=np.uint16
)
_UUID_DASHES = (8, 13, 18, 23)
# (source hex slice, destination slice) of the 32 hex digits inside the 36-character form
_UUID_GROUPS = ((0, 8, 0), (8, 12, 9), (12, 16, 14), (16, 20, 19), (20, 32, 24))


def fixed_width(
    chars: npt.NDArray[np.uint8], valid: npt.NDArray[np.bool_] | None = None
) -> pa.StringArray:
    """An Arrow string array over an (n, width) matrix of ASCII bytes, one row per string.

    ``valid`` (optional, one bool per row) marks which rows are non-null.
    """
    n, width = chars.shape
    offsets = np.arange(0, width * (n + 1), width, dtype=np.int32)
    data = np.ascontiguousarray(chars)
    bitmap = None
    if valid is not None and not valid.all():
        bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data), bitmap)


def _uuid_chars(octets: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """(n, 16) random octets -> (n, 36) characters of version-4 UUIDs."""
    n = octets.shape[0]
    octets[:, 6] = (octets[:, 6] & 0x0F) | 0x40
    octets[:, 8] = (octets[:, 8] & 0x3F) | 0x80
    hexes = _HEX_PAIRS[octets].view(np.uint8).reshape(n, 32)
    out = np.empty((n, 36), dtype=np.uint8)
    out[:, list(_UUID_DASHES)] = ord("-")
    for src_lo, src_hi, dst in _UUID_GROUPS:
        out[:, dst : dst + src_hi - src_lo] = hexes[:, src_lo:src_hi]
    return out


def uuid4_chars(rng: np.random.Generator, n: int) -> npt.NDArray[np.uint8]:
    """``n`` random UUIDs as an (n, 36) character matrix, deterministic for ``rng``."""
    raw = rng.integers(0, np.iinfo(np.uint64).max, size=2 * n, dtype=np.uint64, endpoint=True)
    return _uuid_chars(raw.view(np.uint8).reshape(n, 16).copy())


def uuid4_strings(rng: np.random.Generator, n: int) -> pa.StringArray:
    """``n`` random (version 4, RFC 4122 variant) UUID strings, deterministic for ``rng``."""
    return fixed_width(uuid4_chars(rng, n))


def _splitmix64(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    out: npt.NDArray[np.uint64] = z ^ (z >> np.uint64(31))
    return out


def keyed_uuid_chars(keys: npt.NDArray[np.uint64], salt: int) -> npt.NDArray[np.uint8]:
    """UUID characters that depend only on (key, salt): the same key -> the same UUID.

    Example:
        >>> a = keyed_uuid_chars(np.array([1, 2], dtype=np.uint64), salt=9)
        >>> b = keyed_uuid_chars(np.array([2], dtype=np.uint64), salt=9)
        >>> bool((a[1] == b[0]).all())
        True
    """
    with np.errstate(over="ignore"):
        base = keys.astype(np.uint64) ^ _splitmix64(np.full(keys.size, salt, dtype=np.uint64))
        hi = _splitmix64(base)
        lo = _splitmix64(base ^ np.uint64(0xA5A5A5A5A5A5A5A5))
    octets = np.stack([hi, lo], axis=1).view(np.uint8).reshape(keys.size, 16).copy()
    return _uuid_chars(octets)


def zero_padded_chars(
    prefix: str, values: npt.NDArray[np.integer], width: int
) -> npt.NDArray[np.uint8]:
    """``prefix`` + the non-negative integers zero-padded to ``width`` digits, as a matrix."""
    vals = np.asarray(values, dtype=np.int64)
    if vals.size and (vals.min() < 0 or vals.max() >= 10**width):
        raise ValueError(f"ids do not fit in {width} digits")
    head = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    out = np.empty((vals.size, head.size + width), dtype=np.uint8)
    out[:, : head.size] = head
    rest = vals.copy()
    for pos in range(width - 1, -1, -1):
        out[:, head.size + pos] = (rest % 10 + ord("0")).astype(np.uint8)
        rest //= 10
    return out


def zero_padded_ids(prefix: str, values: npt.NDArray[np.integer], width: int) -> pa.StringArray:
    """``prefix`` + the non-negative integers zero-padded to ``width`` digits."""
    return fixed_width(zero_padded_chars(prefix, values, width))
