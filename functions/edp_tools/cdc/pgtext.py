"""Parsers of PostgreSQL's text output forms, with the arithmetic Debezium's Java code applies.

The local CDC reader gets every value as text (``pgoutput`` text mode, and the snapshot reads
the same text form). These helpers turn that text into the numbers Debezium 3.0.7 computes from
it, including what Python's ``datetime`` cannot hold (years past 9999, BC dates, ``infinity``),
so the encoders in :mod:`edp_tools.cdc.encoding` stay small.

Example:
    >>> epoch_day(2016, 11, 4)
    17109
    >>> parse_array('{1,NULL,"a \\\\"b\\\\""}')
    ['1', None, 'a "b"']
    >>> java_string_hash("key")
    106079
"""

from __future__ import annotations

import re

from edp.errors import PermanentError

#: io.debezium.time.MicroDuration.DAYS_PER_MONTH_AVG (365.25 / 12).
DAYS_PER_MONTH_AVG = 365.25 / 12.0

_DATE = re.compile(r"^(\d+)-(\d\d)-(\d\d)( BC)?$")
_TS = re.compile(
    r"^(\d+)-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?:\.(\d+))?([+-]\d\d(?::?\d\d){0,2})?( BC)?$"
)
_TIME = re.compile(r"^(\d+):(\d\d):(\d\d)(?:\.(\d+))?([+-]\d\d(?::?\d\d){0,2})?$")
_INTERVAL_UNIT = re.compile(r"([+-]?\d+) (year|years|mon|mons|day|days)\b")
_INTERVAL_TIME = re.compile(r"([+-])?(\d+):(\d\d):(\d\d)(?:\.(\d+))?")


class PgTextError(PermanentError):
    """A text value that is not in the form PostgreSQL prints (ISO DateStyle)."""


def epoch_day(year: int, month: int, day: int) -> int:
    """Days from 1970-01-01 in the proleptic Gregorian calendar (Java ``LocalDate.toEpochDay``).

    Example:
        >>> epoch_day(1969, 12, 31)
        -1
    """
    y = year
    total = 365 * y
    if y >= 0:
        total += (y + 3) // 4 - (y + 99) // 100 + (y + 399) // 400
    else:
        total -= _jdiv(y, -4) - _jdiv(y, -100) + _jdiv(y, -400)
    total += _jdiv(367 * month - 362, 12)
    total += day - 1
    if month > 2:
        total -= 1
        leap = (y % 4 == 0) and (y % 100 != 0 or y % 400 == 0)
        if not leap:
            total -= 1
    return total - 719528


def _jdiv(a: int, b: int) -> int:
    """Java's integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _year(text: str, bc: str | None) -> int:
    # PostgreSQL prints 1 BC as "0001 BC"; ISO/Java count it as year 0.
    value = int(text)
    return 1 - value if bc else value


def parse_date(text: str) -> int:
    """``date`` text -> epoch days."""
    m = _DATE.match(text)
    if m is None:
        raise PgTextError(f"not a date: {text!r}")
    return epoch_day(_year(m.group(1), m.group(4)), int(m.group(2)), int(m.group(3)))


def _fraction_micros(digits: str | None) -> int:
    return int((digits or "").ljust(6, "0")[:6]) if digits else 0


def _offset_seconds(text: str | None) -> int:
    if not text:
        return 0
    sign = -1 if text[0] == "-" else 1
    parts = text[1:].replace(":", "")
    hours, minutes, seconds = int(parts[0:2]), int(parts[2:4] or 0), int(parts[4:6] or 0)
    return sign * (hours * 3600 + minutes * 60 + seconds)


def parse_timestamp(text: str) -> tuple[int, int]:
    """``timestamp``/``timestamptz`` text -> (epoch seconds at UTC, microseconds).

    Example:
        >>> parse_timestamp("1970-01-01 00:00:01.5+00")
        (1, 500000)
    """
    m = _TS.match(text)
    if m is None:
        raise PgTextError(f"not a timestamp: {text!r}")
    days = epoch_day(_year(m.group(1), m.group(9)), int(m.group(2)), int(m.group(3)))
    seconds = days * 86400 + int(m.group(4)) * 3600 + int(m.group(5)) * 60 + int(m.group(6))
    return seconds - _offset_seconds(m.group(8)), _fraction_micros(m.group(7))


def civil_from_days(days: int) -> tuple[int, int, int]:
    """Epoch days -> (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).

    Example:
        >>> civil_from_days(-1)
        (1969, 12, 31)
    """
    z = days + 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return (y + 1 if m <= 2 else y), m, d


def iso_year(year: int) -> str:
    """Java ``ISO_LOCAL_DATE`` year: 4 digits, a sign beyond 9999 or below 0."""
    if year > 9999:
        return f"+{year}"
    if year < 0:
        return f"-{-year:04d}"
    return f"{year:04d}"


def parse_time(text: str) -> tuple[int, int]:
    """``time``/``timetz`` text -> (microseconds of day as written, offset seconds).

    ``24:00:00`` is a valid PostgreSQL time and stays 86,400,000,000 microseconds.
    """
    m = _TIME.match(text)
    if m is None:
        raise PgTextError(f"not a time: {text!r}")
    micros = (int(m.group(1)) * 3600 + int(m.group(2)) * 60 + int(m.group(3))) * 1_000_000
    return micros + _fraction_micros(m.group(4)), _offset_seconds(m.group(5))


def interval_micros(text: str) -> int:
    """``interval`` text (IntervalStyle postgres) -> Debezium ``MicroDuration`` microseconds.

    pgjdbc's ``PGInterval`` splits the value into years, months, days, hours, minutes and
    (double) seconds; ``MicroDuration.durationMicros`` then counts a month as 365.25 / 12 days
    in double arithmetic and truncates to a long.

    Example:
        >>> interval_micros("1 year 2 mons 3 days 04:05:06.78")
        37091106780000
    """
    years = months = days = hours = minutes = 0
    seconds = 0.0
    rest = text
    for value, unit in _INTERVAL_UNIT.findall(text):
        if unit.startswith("year"):
            years = int(value)
        elif unit.startswith("mon"):
            months = int(value)
        else:
            days = int(value)
    rest = _INTERVAL_UNIT.sub("", text).strip()
    if rest:
        m = _INTERVAL_TIME.fullmatch(rest)
        if m is None:
            raise PgTextError(f"not an interval: {text!r}")
        sign = -1 if m.group(1) == "-" else 1
        hours = sign * int(m.group(2))
        minutes = sign * int(m.group(3))
        whole = int(m.group(4))
        micros = _fraction_micros(m.group(5))
        seconds = sign * (whole + micros / 1_000_000.0)
    number_of_days = ((years * 12) + months) * DAYS_PER_MONTH_AVG + days
    number_of_seconds = (((number_of_days * 24 + hours) * 60) + minutes) * 60 + seconds
    return int(number_of_seconds * 1e6)


def parse_array(text: str) -> list[str | None]:
    """A one-dimensional array's text form -> its elements' text (None for NULL).

    Raises:
        PgTextError: For a multi-dimensional array or malformed text.
    """
    if text.startswith("["):  # explicit bounds: "[0:1]={a,b}"
        text = text[text.index("=") + 1 :]
    if not (text.startswith("{") and text.endswith("}")):
        raise PgTextError(f"not an array: {text[:40]!r}")
    body = text[1:-1]
    out: list[str | None] = []
    if not body:
        return out
    i, n = 0, len(body)
    while i <= n:
        if i < n and body[i] == "{":
            raise PgTextError("multi-dimensional arrays are not supported")
        if i < n and body[i] == '"':
            i += 1
            chars: list[str] = []
            while i < n and body[i] != '"':
                if body[i] == "\\":
                    i += 1
                chars.append(body[i])
                i += 1
            out.append("".join(chars))
            i += 2  # closing quote and the comma
            continue
        end = body.find(",", i)
        end = n if end < 0 else end
        raw = body[i:end].strip()
        out.append(None if raw == "NULL" else raw)
        i = end + 1
    return out


def parse_hstore(text: str) -> list[tuple[str, str | None]]:
    """``hstore`` text (``"k"=>"v", "k2"=>NULL``) -> pairs in the order written."""
    pairs: list[tuple[str, str | None]] = []
    i, n = 0, len(text)

    def quoted(pos: int) -> tuple[str, int]:
        if text[pos] != '"':
            raise PgTextError(f"not an hstore: {text[:40]!r}")
        pos += 1
        chars: list[str] = []
        while text[pos] != '"':
            if text[pos] == "\\":
                pos += 1
            chars.append(text[pos])
            pos += 1
        return "".join(chars), pos + 1

    while i < n:
        while i < n and text[i] in " ,":
            i += 1
        if i >= n:
            break
        key, i = quoted(i)
        if text[i : i + 2] != "=>":
            raise PgTextError(f"not an hstore: {text[:40]!r}")
        i += 2
        if text.startswith("NULL", i):
            pairs.append((key, None))
            i += 4
        else:
            value, i = quoted(i)
            pairs.append((key, value))
    return pairs


def java_string_hash(value: str) -> int:
    """Java ``String.hashCode`` (over UTF-16 code units, 32-bit overflow)."""
    h = 0
    data = value.encode("utf-16-be")
    for k in range(0, len(data), 2):
        h = (31 * h + ((data[k] << 8) | data[k + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def java_hashmap_order(keys: list[str]) -> list[int]:
    """Indexes of ``keys`` (inserted in this order) in a ``java.util.HashMap``'s iteration order.

    The bucket of a key is ``(h ^ (h >>> 16)) & (capacity - 1)``; capacity starts at 16 and
    doubles once the size exceeds 0.75 x capacity; a bucket keeps insertion order, and a resize
    keeps the relative order. (Buckets turned into trees, 8+ colliding keys, are not modelled.)
    """
    capacity = 16
    while len(keys) > capacity * 3 // 4:
        capacity *= 2

    def bucket(key: str) -> int:
        h = java_string_hash(key) & 0xFFFFFFFF
        return (h ^ (h >> 16)) & (capacity - 1)

    return sorted(range(len(keys)), key=lambda i: (bucket(keys[i]), i))
