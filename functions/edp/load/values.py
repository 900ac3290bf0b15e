"""Value conversions of the stream load: one JSON value to what a raw column stores.

Timestamps become ``int`` microseconds since the Unix epoch in UTC (what Arrow's
``timestamp("us", tz="UTC")`` stores, so a batch costs no per-value conversion), device types
their contract spelling, JSON values canonical text. Each converter raises ``ValueError`` (or
``TypeError``/``OverflowError``) on a value it cannot take; :mod:`edp.load.transforms` turns
that into a ``schema_violation`` dead letter naming the column.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import orjson

#: One value in, the column's stored value out.
Converter = Callable[[Any], Any]

#: The Unix epoch in UTC (timestamps are microseconds since it).
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US_PER_S = 1_000_000
# Epoch numbers above this are milliseconds (or finer), below it seconds: 1e11 s is year 5138.
_SECONDS_CEILING = 100_000_000_000
# BigQuery's TIMESTAMP range (0001-01-01 .. 9999-12-31) in microseconds.
_MIN_TS_US = -62_135_596_800_000_000
_MAX_TS_US = 253_402_300_799_999_999

# Spellings clients and SDKs send, to the contract's device types (a test checks the values).
_DEVICE_ALIASES: Final[Mapping[str, str]] = {
    "mobile": "mobile",
    "phone": "mobile",
    "smartphone": "mobile",
    "ios": "mobile",
    "iphone": "mobile",
    "android": "mobile",
    "mobileapp": "mobile",
    "app": "mobile",
    "tablet": "tablet",
    "ipad": "tablet",
    "desktop": "desktop",
    "pc": "desktop",
    "web": "desktop",
    "computer": "desktop",
    "mac": "desktop",
    "windows": "desktop",
    "linux": "desktop",
    "bot": "bot",
    "crawler": "bot",
    "spider": "bot",
    "unknown": "unknown",
    "other": "unknown",
}


def to_utc_micros(value: Any) -> int:
    """A timestamp (ISO-8601 text, epoch s/ms/us number, or datetime) as UTC epoch microseconds.

    Naive times are taken as UTC. Epoch numbers: below 1e11 seconds, below 1e14 milliseconds,
    else microseconds.

    Example:
        >>> to_utc_micros("2026-01-01T09:00:00+09:00")
        1767225600000000
        >>> to_utc_micros("2026-01-01 00:00:00.5Z"), to_utc_micros(1767225600123)
        (1767225600500000, 1767225600123000)
    """
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"not an ISO-8601 timestamp: {value[:64]!r}") from None
        return _datetime_micros(parsed)
    if isinstance(value, bool):
        raise ValueError("a boolean is not a timestamp")
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("not a finite number")
        magnitude = abs(value)
        if magnitude < _SECONDS_CEILING:
            micros = round(value * _US_PER_S)
        elif magnitude < _SECONDS_CEILING * 1000:
            micros = round(value * 1000)
        else:
            micros = int(value)
        return _check_range(micros)
    if isinstance(value, datetime):
        return _datetime_micros(value)
    raise ValueError(f"a {type(value).__name__} is not a timestamp")


def _datetime_micros(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - EPOCH
    return _check_range((delta.days * 86_400 + delta.seconds) * _US_PER_S + delta.microseconds)


def _check_range(micros: int) -> int:
    if not _MIN_TS_US <= micros <= _MAX_TS_US:
        raise ValueError("timestamp outside 0001-01-01 .. 9999-12-31")
    return micros


def micros_to_datetime(micros: int) -> datetime:
    """Inverse of :func:`to_utc_micros` (an aware UTC datetime).

    Example:
        >>> micros_to_datetime(1767225600000000).isoformat()
        '2026-01-01T00:00:00+00:00'
    """
    return datetime.fromtimestamp(micros // _US_PER_S, tz=UTC).replace(
        microsecond=micros % _US_PER_S
    )


def now_micros() -> int:
    """The wall clock as UTC epoch microseconds."""
    return time.time_ns() // 1000


def normalise_device_type(value: Any) -> str:
    """Canonical device_type (``mobile``, ``desktop``, ``tablet``, ``bot``, ``unknown``) from
    what clients and SDKs send.

    Example:
        >>> normalise_device_type(" iPhone "), normalise_device_type("Mobile-App")
        ('mobile', 'mobile')
        >>> normalise_device_type(None), normalise_device_type("toaster")
        ('unknown', 'unknown')
    """
    if not isinstance(value, str):
        return "unknown"
    key = value.strip().lower().replace(" ", "").replace("-", "").replace("_", "")
    return _DEVICE_ALIASES.get(key, "unknown")


def to_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a string, got a boolean")
    if isinstance(value, int | float):
        return str(value)
    raise ValueError(f"expected a string, got {type(value).__name__}")


def to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected an integer, got a boolean")
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise ValueError("integer out of INT64 range")
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            parsed = int(value.strip())
        except ValueError:
            raise ValueError(f"expected an integer, got {value!r:.40}") from None
        return to_int(parsed)
    raise ValueError(f"expected an integer, got {value!r:.40}")


def to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    if isinstance(value, int | float):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            raise ValueError(f"expected a number, got {value!r:.40}") from None
    else:
        raise ValueError(f"expected a number, got {type(value).__name__}")
    if not math.isfinite(result):
        raise ValueError("expected a finite number")
    return result


def to_decimal(scale: int) -> Converter:
    quantum = Decimal(1).scaleb(-scale)

    def convert(value: Any) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
            raise ValueError(f"expected a decimal number, got {type(value).__name__}")
        try:
            number = Decimal(str(value).strip())
            if not number.is_finite():
                raise ValueError("expected a finite decimal")
            return number.quantize(quantum)
        except InvalidOperation:
            raise ValueError(f"expected a decimal number, got {value!r:.40}") from None

    return convert


def to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError(f"expected a boolean, got {value!r:.40}")


def to_date_days(value: Any) -> date:
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()[:10])
        except ValueError:
            raise ValueError(f"not an ISO date: {value[:32]!r}") from None
    if isinstance(value, date):
        return value
    raise ValueError(f"a {type(value).__name__} is not a date")


def to_json_text(value: Any) -> str:
    if isinstance(value, str):
        return value if _is_json(value) else orjson.dumps(value).decode()
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _is_json(text: str) -> bool:
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return True


def to_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    raise ValueError(f"expected bytes, got {type(value).__name__}")
