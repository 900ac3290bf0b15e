"""The generated traffic looks like the reference shop: volume, funnel, CVR, seasonality, users."""

from __future__ import annotations

import hashlib
from datetime import date
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from edp_tools.generator import Generator, GeneratorConfig
from edp_tools.generator.model import EVENTS_PER_DAY, HOURLY_KST, WEEKLY

pytestmark = pytest.mark.timeout(120)


def query(table: pa.Table, sql: str) -> list[dict[str, Any]]:
    """Run DuckDB SQL over ``table`` (named ``t``); rows as dicts."""
    con = duckdb.connect()
    con.register("t", table)
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _digest(table: pa.Table) -> str:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()


def _day(seed: int, scale: float = 0.002, start: date = date(2026, 11, 24)) -> pa.Table:
    return Generator(GeneratorConfig(start=start, seed=seed, scale=scale)).day(0).table


def test_same_seed_gives_identical_bytes_and_another_seed_differs() -> None:
    first, again, other = _day(3), _day(3), _day(4)
    assert _digest(first) == _digest(again)
    assert _digest(first) != _digest(other)
    assert first.column("event_id").to_pylist() != other.column("event_id").to_pylist()


def test_a_day_of_a_multi_day_run_does_not_depend_on_being_generated_first() -> None:
    config = GeneratorConfig(start=date(2026, 11, 24), days=3, seed=9, scale=0.002)
    in_order = [r.table for r in Generator(config).days()]
    alone = Generator(config).day(2).table
    assert _digest(in_order[2]) == _digest(alone)


def test_daily_volume_is_the_seed_figure_times_scale_and_weekday(week: pa.Table) -> None:
    rows = query(week, "SELECT day, COUNT(*) AS n FROM t WHERE day < 7 GROUP BY day ORDER BY day")
    for row in rows:
        expected = EVENTS_PER_DAY * 0.02 * WEEKLY[row["day"]]  # week starts on a Monday
        assert abs(row["n"] / expected - 1) < 0.10, row
    # weekly seasonality: Sunday is the busiest planned day, Friday the quietest
    by_day = {r["day"]: r["n"] for r in rows}
    assert by_day[6] > by_day[4]


def test_funnel_narrows_at_every_step(week: pa.Table) -> None:
    steps = [
        "view_item", "add_to_cart", "view_cart", "begin_checkout", "add_shipping_info",
        "add_payment_info", "purchase",
    ]  # fmt: skip
    counts = query(
        week,
        "SELECT event_type, COUNT(DISTINCT COALESCE(user_id, anonymous_id)) AS n "
        "FROM t GROUP BY event_type",
    )
    by_type = {r["event_type"]: r["n"] for r in counts}
    users = [by_type[s] for s in steps]
    assert users == sorted(users, reverse=True), dict(zip(steps, users, strict=True))
    assert by_type["purchase"] > 0
    assert 0 < by_type.get("refund", 0) < by_type["purchase"] * 0.1


def test_seven_day_user_conversion_is_about_twelve_percent(week: pa.Table) -> None:
    [row] = query(
        week,
        "SELECT COUNT(DISTINCT user_id) AS users, "
        "COUNT(DISTINCT CASE WHEN event_type = 'purchase' THEN user_id END) AS buyers FROM t",
    )
    cvr = row["buyers"] / row["users"]
    assert 0.10 <= cvr <= 0.145, cvr


def test_peak_hour_is_about_seventeen_times_the_quietest_hour(week: pa.Table) -> None:
    rows = query(
        week,
        "SELECT EXTRACT(hour FROM event_timestamp AT TIME ZONE 'Asia/Seoul') AS h, "
        "COUNT(*) AS n FROM t WHERE day < 7 GROUP BY h",
    )
    by_hour = {int(r["h"]): r["n"] for r in rows}
    assert len(by_hour) == 24
    ratio = max(by_hour.values()) / min(by_hour.values())
    assert 14 <= ratio <= 21, ratio
    assert max(by_hour, key=by_hour.__getitem__) == int(HOURLY_KST.argmax())
    assert min(by_hour, key=by_hour.__getitem__) in (4, 5)


def test_users_come_back_across_days_and_new_users_sign_up(week: pa.Table) -> None:
    [row] = query(
        week,
        """
        WITH first_seen AS (SELECT user_id, MIN(day) AS d0 FROM t
                            WHERE user_id IS NOT NULL GROUP BY user_id)
        SELECT
          COUNT(DISTINCT CASE WHEN t.day > f.d0 THEN t.user_id END) AS returning,
          COUNT(DISTINCT t.user_id) AS users,
          COUNT(DISTINCT CASE WHEN event_type = 'sign_up' THEN t.user_id END) AS signups
        FROM t JOIN first_seen f USING (user_id)
        """,
    )
    assert row["returning"] > 0.10 * row["users"]
    assert row["signups"] > 0.05 * row["users"]


def test_sessions_have_thirty_minute_semantics_and_one_identity(week: pa.Table) -> None:
    [row] = query(
        week,
        """
        WITH ordered AS (
          SELECT session_id, anonymous_id, event_timestamp,
                 event_timestamp - LAG(event_timestamp) OVER (
                   PARTITION BY session_id ORDER BY event_timestamp) AS gap
          FROM t WHERE session_id IS NOT NULL)
        SELECT MAX(EXTRACT(epoch FROM gap)) AS max_gap_s,
               COUNT(DISTINCT session_id) AS sessions,
               (SELECT COUNT(*) FROM (SELECT session_id FROM t WHERE session_id IS NOT NULL
                 GROUP BY session_id HAVING COUNT(DISTINCT anonymous_id) > 1)) AS split
        FROM ordered
        """,
    )
    assert row["max_gap_s"] < 30 * 60
    assert row["split"] == 0
    assert row["sessions"] > 10_000


def test_one_device_starts_a_new_session_only_after_thirty_idle_minutes(week: pa.Table) -> None:
    [row] = query(
        week,
        """
        WITH sessions AS (
          SELECT anonymous_id, session_id, day, MIN(event_timestamp) AS first_at,
                 MAX(event_timestamp) AS last_at
          FROM t WHERE session_id IS NOT NULL GROUP BY ALL),
        follows AS (  -- within one generated day (days are independent streams)
          SELECT first_at - LAG(last_at) OVER (
                   PARTITION BY anonymous_id, day ORDER BY first_at) AS idle
          FROM sessions)
        SELECT COUNT(idle) AS repeats,
               COUNT(*) FILTER (WHERE idle < INTERVAL 29 MINUTE) AS too_close
        FROM follows
        """,
    )
    assert row["repeats"] > 1_000
    assert row["too_close"] == 0


def test_client_realism_ids_skew_and_anonymous_share(week: pa.Table) -> None:
    [row] = query(
        week,
        """
        SELECT COUNT(*) AS n, COUNT(DISTINCT event_id) AS ids,
               AVG(CASE WHEN user_id IS NULL THEN 1 ELSE 0 END) AS anonymous,
               AVG(CASE WHEN ABS(EXTRACT(epoch FROM client_timestamp - event_timestamp)) > 60
                   THEN 1 ELSE 0 END) AS skewed,
               COUNT(*) FILTER (WHERE event_timestamp <>
                   received_at - (sent_at - client_timestamp)) AS not_corrected,
               COUNT(*) FILTER (WHERE NOT regexp_full_match(event_id,
                   '[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}'))
                   AS bad_ids
        FROM t
        """,
    )
    assert row["ids"] == row["n"]  # no duplicates without a duplicate storm
    assert row["bad_ids"] == 0
    assert row["not_corrected"] == 0
    assert 0.02 <= row["anonymous"] <= 0.12
    assert 0.005 <= row["skewed"] <= 0.10


def test_purchases_carry_the_cart_and_its_value(week: pa.Table) -> None:
    rows = query(
        week,
        """
        SELECT transaction_id, value, currency, tax, shipping,
               (SELECT SUM(i.price * i.quantity) FROM (SELECT UNNEST(items) AS i)) AS items_value,
               len(items) AS n_items
        FROM t WHERE event_type = 'purchase'
        """,
    )
    assert rows
    for r in rows[:500]:
        assert r["currency"] == "KRW"
        assert r["n_items"] >= 1
        assert r["value"] == pytest.approx(r["items_value"])
        assert r["transaction_id"].startswith("T2026")
        assert r["shipping"] in (0.0, 3_000.0, 3_500.0, 5_000.0)
    ids = [r["transaction_id"] for r in rows]
    assert len(set(ids)) == len(ids)


def test_platform_and_device_mix_is_consistent(week: pa.Table) -> None:
    rows = query(
        week,
        "SELECT platform, device_type, COUNT(*) AS n, "
        "COUNT(*) FILTER (WHERE page_location IS NOT NULL) AS with_url, "
        "COUNT(*) FILTER (WHERE screen_name IS NOT NULL) AS with_screen "
        "FROM t WHERE event_type <> 'refund' GROUP BY ALL",
    )
    combos = {(r["platform"], r["device_type"]) for r in rows}
    assert ("ios", "desktop") not in combos and ("android", "desktop") not in combos
    assert {p for p, _ in combos} == {"web", "ios", "android"}
    for r in rows:
        if r["platform"] == "web":
            assert r["with_url"] == r["n"] and r["with_screen"] == 0
        else:
            assert r["with_url"] == 0 and r["with_screen"] == r["n"]
