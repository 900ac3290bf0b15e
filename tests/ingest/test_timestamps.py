"""Every timestamp form the Segment and RudderStack SDKs and docs emit, each with its source.

Expected instants are worked out by hand from the string (UTC), not from the parser. Sources are
the SDKs' own formatting code or tests, and Segment's docs (segmentio/segment-docs), read at:
analytics-next, analytics-ios, analytics-android, analytics-python, analytics-ruby,
analytics-php, analytics-go, analytics-java, Analytics.NET, rudder-sdk-js, rudder-sdk-android,
rudder-sdk-python.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from edp.ingest.timestamps import parse_timestamp

KST = timezone(timedelta(hours=9))

# (string, expected instant in UTC, source)
FORMS: list[tuple[str, datetime, str]] = [
    # JavaScript Date.prototype.toISOString(): analytics-next (packages/browser normalize.ts,
    # batched-dispatcher.ts `new Date().toISOString()`), rudder-sdk-js
    # (analytics-js-common/src/utilities/timestamp.ts), analytics-node
    (
        "2026-11-21T10:00:00.123Z",
        datetime(2026, 11, 21, 10, 0, 0, 123000, UTC),
        "toISOString (analytics-next, rudder-sdk-js)",
    ),
    # analytics-ios SEGUtils.m iso8601FormattedString, AnalyticsUtilTests.swift
    ("1992-08-06T11:32:04.335Z", datetime(1992, 8, 6, 11, 32, 4, 335000, UTC), "analytics-ios ms"),
    # analytics-ios iso8601NanoFormattedString (9 fractional digits), AnalyticsUtilTests.swift
    (
        "1992-08-06T11:32:04.335000008Z",
        datetime(1992, 8, 6, 11, 32, 4, 335000, UTC),
        "analytics-ios nanos",
    ),
    # analytics-android Iso8601Utils.formatNanos, Iso8601UtilsTest.kt
    (
        "2007-08-15T19:51:45.345554387Z",
        datetime(2007, 8, 15, 19, 51, 45, 345554, UTC),
        "analytics-android nanos",
    ),
    # analytics-android Iso8601Utils.parse accepts no fraction (Iso8601UtilsTest.kt)
    ("2007-08-13T19:51:23Z", datetime(2007, 8, 13, 19, 51, 23, 0, UTC), "analytics-android"),
    # analytics-android Iso8601Utils.parse with an offset (Iso8601UtilsTest.kt)
    (
        "2007-08-13T21:51:23.789+02:00",
        datetime(2007, 8, 13, 19, 51, 23, 789000, UTC),
        "analytics-android offset",
    ),
    # rudder-sdk-android Utils.java SimpleDateFormat("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'")
    (
        "2026-01-05T03:04:05.006Z",
        datetime(2026, 1, 5, 3, 4, 5, 6000, UTC),
        "rudder-sdk-android",
    ),
    # analytics-python client.py: timestamp.isoformat(timespec='milliseconds') of an aware UTC time
    (
        "2026-11-21T01:00:00.250+00:00",
        datetime(2026, 11, 21, 1, 0, 0, 250000, UTC),
        "analytics-python timestamp",
    ),
    # analytics-python request.py sentAt: datetime.now(tz=tzutc()).isoformat() (microseconds)
    (
        "2026-11-21T01:00:00.123456+00:00",
        datetime(2026, 11, 21, 1, 0, 0, 123456, UTC),
        "analytics-python sentAt",
    ),
    # ... and isoformat() omits the fraction when microsecond == 0; guess_timezone(tzlocal())
    (
        "2026-11-21T10:00:00+09:00",
        datetime(2026, 11, 21, 1, 0, 0, 0, UTC),
        "analytics-python local zone",
    ),
    # rudder-sdk-python client.py: timestamp.isoformat() (microseconds, +00:00)
    (
        "2026-11-21T01:00:00.000001+00:00",
        datetime(2026, 11, 21, 1, 0, 0, 1, UTC),
        "rudder-sdk-python",
    ),
    # analytics-ruby utils.rb time_in_iso8601: strftime('%Y-%m-%dT%H:%M:%S.%3N') + '+09:00'
    (
        "2026-11-21T10:00:00.000+09:00",
        datetime(2026, 11, 21, 1, 0, 0, 0, UTC),
        "analytics-ruby",
    ),
    # analytics-ruby utils.rb date_in_iso8601: a Date as strftime('%F') (midnight UTC)
    ("2026-11-21", datetime(2026, 11, 21, 0, 0, 0, 0, UTC), "analytics-ruby Date"),
    # analytics-php Client.php formatTime: date('c') (no fraction, server zone)
    ("2015-02-23T22:28:55+00:00", datetime(2015, 2, 23, 22, 28, 55, 0, UTC), "analytics-php"),
    # analytics-php formatTime with microtime(true): 'Y-m-d\TH:i:s.<float digits>P' (any length)
    (
        "2015-02-23T22:28:55.54+01:00",
        datetime(2015, 2, 23, 21, 28, 55, 540000, UTC),
        "analytics-php microtime",
    ),
    # analytics-go: time.Time's JSON form is RFC 3339 with nanoseconds, trailing zeros trimmed
    ("2026-11-21T01:00:00.1Z", datetime(2026, 11, 21, 1, 0, 0, 100000, UTC), "analytics-go"),
    # Analytics.NET BaseAction.cs: DateTime.Now.ToString("o") (7 fractional digits, local offset)
    (
        "2026-11-21T10:00:00.1234567+09:00",
        datetime(2026, 11, 21, 1, 0, 0, 123456, UTC),
        "Analytics.NET",
    ),
    # ... ToString("o") of a DateTime of Kind Unspecified has no offset: read as UTC
    (
        "2026-11-21T10:00:00.1234567",
        datetime(2026, 11, 21, 10, 0, 0, 123456, UTC),
        "Analytics.NET unspecified kind",
    ),
    # segment-docs http-api/index.md batch example: month without zero padding
    (
        "2015-2-02T00:30:08.276Z",
        datetime(2015, 2, 2, 0, 30, 8, 276000, UTC),
        "segment-docs HTTP API batch",
    ),
    # segment-docs spec/best-practices-identify.md: two fractional digits
    (
        "2020-04-23T22:38:48.55Z",
        datetime(2020, 4, 23, 22, 38, 48, 550000, UTC),
        "segment-docs identify best practices",
    ),
    # segment-docs protocols/validate/forward-violations.md: nanoseconds
    (
        "2018-09-05T23:05:25.862826855Z",
        datetime(2018, 9, 5, 23, 5, 25, 862826, UTC),
        "segment-docs forward violations",
    ),
    # segment-docs partners/spec.md: Go's time.Time.String() (monotonic clock reading appended)
    (
        "2020-05-09 23:54:49.209808489 +0000 UTC m=+70366.298768264",
        datetime(2020, 5, 9, 23, 54, 49, 209808, UTC),
        "segment-docs partners spec (Go String())",
    ),
    # segment-docs destinations/sailthru: a year alone (ISO 8601 reduced precision)
    ("2017", datetime(2017, 1, 1, 0, 0, 0, 0, UTC), "segment-docs sailthru example"),
    # ISO 8601 basic offset (+hhmm), accepted by analytics-android's Iso8601Utils.parse
    ("2026-11-21T10:00:00.000+0900", datetime(2026, 11, 21, 1, 0, 0, 0, UTC), "basic offset"),
    # a leap second: analytics-android Iso8601Utils.parse truncates 60..62 to 59
    ("2016-12-31T23:59:60Z", datetime(2016, 12, 31, 23, 59, 59, 0, UTC), "leap second"),
    # lower-case designators are ISO 8601 too (RFC 3339 section 5.6 NOTE)
    ("2026-11-21t01:00:00z", datetime(2026, 11, 21, 1, 0, 0, 0, UTC), "RFC 3339 lower case"),
    # an aware datetime object (a caller that already parsed it)
    ("<datetime>", datetime(2026, 11, 21, 1, 0, 0, 0, UTC), "Python datetime"),
]


@pytest.mark.parametrize(("text", "expected", "source"), FORMS, ids=[f[2] for f in FORMS])
def test_documented_form_is_parsed(text: str, expected: datetime, source: str) -> None:
    value: object = datetime(2026, 11, 21, 10, 0, tzinfo=KST) if text == "<datetime>" else text
    parsed = parse_timestamp(value)
    assert parsed is not None, f"{source}: {text!r} refused"
    assert parsed.utcoffset() is not None
    assert parsed == expected, source


REFUSED: list[tuple[object, str]] = [
    ("", "empty"),
    ("   ", "blank"),
    ("yesterday", "words"),
    ("2026-13-01T00:00:00Z", "month 13"),
    ("2026-02-30T00:00:00Z", "30 February"),
    ("2026-11-21T25:00:00Z", "hour 25"),
    ("2026-11-21T10:00:00+25:00", "offset beyond a day"),
    (1732150800, "epoch number (no SDK sends one)"),
    (None, "null"),
    (True, "boolean"),
    ({"date": "2026-11-21"}, "object"),
    ("2026-11-21T10:00:00Z trailing", "trailing text"),
]


@pytest.mark.parametrize(("value", "why"), REFUSED, ids=[r[1] for r in REFUSED])
def test_malformed_value_is_refused(value: object, why: str) -> None:
    assert parse_timestamp(value) is None, why


def test_bigquery_range_edges() -> None:
    # BigQuery TIMESTAMP: 0001-01-01 00:00:00 to 9999-12-31 23:59:59.999999 UTC.
    assert parse_timestamp("0001-01-01T00:00:00Z") == datetime(1, 1, 1, tzinfo=UTC)
    assert parse_timestamp("9999-12-31T23:59:59.999999Z") == datetime(
        9999, 12, 31, 23, 59, 59, 999999, UTC
    )
    # outside it once converted to UTC: refused, never an OverflowError
    assert parse_timestamp("0001-01-01T00:30:00+01:00") is None
    assert parse_timestamp("9999-12-31T23:30:00-01:00") is None
