"""Timestamps as the Segment and RudderStack SDKs and docs write them, read into aware datetimes.

The SDKs agree on ISO 8601 but not on its details: 1 to 9 fractional digits (JavaScript 3, Python
6, .NET 7, iOS/Android/Go 9), ``Z`` or ``+hh:mm`` or ``+hhmm``, no offset at all (.NET's
``ToString("o")`` of an unspecified-kind time: read as UTC, as Segment does), a date alone (Ruby's
``Date``), a year alone, a month without zero padding (Segment's HTTP API docs) and Go's
``time.Time.String()`` (Segment's partner docs). A strict RFC 3339 parser refuses half of these,
and a refused timestamp loses the event behind a 2xx the SDK treats as success, so this parser
takes every one of them (the common ones through Python's C ``fromisoformat``, the rest through
one regular expression). Fractions beyond microseconds are truncated (Python and BigQuery keep
microseconds). Values outside BigQuery's TIMESTAMP range (years 1-9999 in UTC) are refused.

Example:
    >>> parse_timestamp("2015-2-02T00:30:08.276Z").isoformat()
    '2015-02-02T00:30:08.276000+00:00'
    >>> parse_timestamp("2026-11-21T10:00:00.1234567+09:00").isoformat()
    '2026-11-21T10:00:00.123456+09:00'
    >>> parse_timestamp("not a time") is None
    True
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Final

_ISO: Final = re.compile(
    r"""
    (?P<year>\d{4})
    (?:-(?P<month>\d{1,2})
        (?:-(?P<day>\d{1,2})
            (?:[Tt ](?P<hour>\d{1,2}):(?P<minute>\d{2})
                (?::(?P<second>\d{2})(?:[.,](?P<fraction>\d{1,9}))?)?
            )?
        )?
    )?
    \s*
    (?P<zone>[Zz]|[+-]\d{2}(?::?\d{2})?)?
    (?:\s+(?:UTC|GMT))?              # Go's String(): "+0000 UTC"
    (?:\s+m=[+-]\d+(?:\.\d+)?)?      # Go's monotonic clock reading
    """,
    re.VERBOSE,
)
_MAX_LENGTH: Final = 80


def _zone(text: str | None) -> timezone | None:
    """The offset of ``Z``/``+hh:mm``/``+hhmm``/``+hh``; None when absent or impossible."""
    if text is None or text in ("Z", "z"):
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    if hours > 23 or minutes > 59:
        raise ValueError("offset out of range")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def parse_timestamp(value: object) -> datetime | None:
    """An aware datetime for any SDK/docs timestamp form; None when it is not a time.

    Args:
        value: a string as an SDK sent it, or an already parsed datetime (naive = UTC).

    Returns:
        The instant with the sender's offset kept, or None for anything else (numbers, words,
        impossible dates, instants outside BigQuery's range).

    Example:
        >>> parse_timestamp("2020-05-09 23:54:49.209808489 +0000 UTC m=+70366.298768264")
        datetime.datetime(2020, 5, 9, 23, 54, 49, 209808, tzinfo=datetime.timezone.utc)
        >>> parse_timestamp("2026-11-21").isoformat()
        '2026-11-21T00:00:00+00:00'
    """
    if isinstance(value, datetime):
        parsed = value if value.tzinfo else value.replace(tzinfo=UTC)
        return parsed if _in_bigquery_range(parsed) else None
    if not isinstance(value, str) or len(value) > _MAX_LENGTH:
        return None
    try:  # the C parser takes the common SDK forms in about a microsecond
        fast = datetime.fromisoformat(value)
    except ValueError:
        pass
    else:
        fast = fast if fast.tzinfo else fast.replace(tzinfo=UTC)
        return fast if 1 < fast.year < 9999 or _in_bigquery_range(fast) else None
    match = _ISO.fullmatch(value.strip())
    if match is None:
        return None
    parts = match.groupdict()
    fraction = (parts["fraction"] or "").ljust(6, "0")[:6]
    second = int(parts["second"] or 0)
    if second == 60:  # a leap second is read as :59, as analytics-android's parser does
        second = 59
    try:
        parsed = datetime(
            int(parts["year"]),
            int(parts["month"] or 1),
            int(parts["day"] or 1),
            int(parts["hour"] or 0),
            int(parts["minute"] or 0),
            second,
            int(fraction),
            tzinfo=_zone(parts["zone"]),
        )
    except ValueError:  # month 13, 30 February, hour 25, offset +25:00
        return None
    return parsed if _in_bigquery_range(parsed) else None


def _in_bigquery_range(value: datetime) -> bool:
    """True when the instant is inside BigQuery's TIMESTAMP range (0001-01-01 .. 9999-12-31 UTC)."""
    try:
        value.astimezone(UTC)
    except OverflowError:
        return False
    return True
