"""BigQuery-dialect SQL on DuckDB: every known trap, as BigQuery answers it, on a real DuckDB.

Each case is (BigQuery SQL, params, the rows BigQuery returns). The expected rows are
BigQuery's documented results, not what DuckDB happens to print.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import duckdb
import pytest

from edp.errors import WarehouseError
from edp.warehouse.dialect import (
    dataset_map,
    referenced_tables,
    to_bigquery,
    to_duckdb,
)

UTC = dt.UTC


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    connection.execute("CREATE SCHEMA raw")
    connection.execute(
        "CREATE TABLE raw.t AS SELECT 1 AS id, [10, 20, 30] AS arr, 5 AS x, 0 AS zero, "
        "TIMESTAMPTZ '2024-01-01 16:30:00+00' AS ts"
    )
    yield connection
    connection.close()


def run(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any] | None = None) -> Any:
    (statement,) = to_duckdb(sql)
    bound = {k: v for k, v in (params or {}).items() if k in statement.params}
    return con.execute(statement.sql, bound).fetchall()


CASES: list[tuple[str, str, dict[str, Any], list[tuple[Any, ...]]]] = [
    (
        "unnest with offset is 0-based",
        "SELECT x, off FROM UNNEST([10, 20, 30]) AS x WITH OFFSET AS off ORDER BY off",
        {},
        [(10, 0), (20, 1), (30, 2)],
    ),
    (
        "correlated unnest with offset, default offset name",
        "SELECT t.id, v, offset FROM raw.t AS t, UNNEST(t.arr) AS v WITH OFFSET ORDER BY offset",
        {},
        [(1, 10, 0), (1, 20, 1), (1, 30, 2)],
    ),
    (
        "array subscripts OFFSET/ORDINAL/SAFE_OFFSET",
        "SELECT arr[OFFSET(0)], arr[ORDINAL(1)], arr[SAFE_OFFSET(9)] FROM raw.t",
        {},
        [(10, 10, None)],
    ),
    (
        "dayofweek is 1 (Sunday) .. 7 (Saturday)",
        "SELECT EXTRACT(DAYOFWEEK FROM DATE '2024-01-07'), "
        "EXTRACT(DAYOFWEEK FROM DATE '2024-01-13')",
        {},
        [(1, 7)],
    ),
    (
        "week counts Sunday weeks from 0",
        "SELECT EXTRACT(WEEK FROM DATE '2024-01-06'), EXTRACT(WEEK FROM DATE '2024-01-07'), "
        "EXTRACT(ISOWEEK FROM DATE '2024-01-07')",
        {},
        [(0, 1, 1)],
    ),
    (
        "date_sub of a date stays a date",
        "SELECT DATE_SUB(@day, INTERVAL 1 DAY), DATE_ADD(@day, INTERVAL 1 MONTH)",
        {"day": dt.date(2024, 1, 31)},
        [(dt.date(2024, 1, 30), dt.date(2024, 2, 29))],
    ),
    (
        "date_sub of current_date is a date",
        "SELECT DATE_SUB(CURRENT_DATE(), INTERVAL 1 DAY) < CURRENT_DATE(), "
        "DATE_DIFF(CURRENT_DATE(), DATE_SUB(CURRENT_DATE(), INTERVAL 3 DAY), DAY)",
        {},
        [(True, 3)],
    ),
    (
        "date_trunc to a monday week is a date",
        "SELECT DATE_TRUNC(DATE '2024-01-03', WEEK(MONDAY)), DATE_TRUNC(DATE '2024-02-15', MONTH)",
        {},
        [(dt.date(2024, 1, 1), dt.date(2024, 2, 1))],
    ),
    (
        "safe_divide by zero is NULL",
        "SELECT SAFE_DIVIDE(x, zero), SAFE_DIVIDE(x, 2) FROM raw.t",
        {},
        [(None, 2.5)],
    ),
    (
        "integer division gives FLOAT64",
        "SELECT 5 / 2, DIV(5, 2), IEEE_DIVIDE(1, 0)",
        {},
        [(2.5, 2, float("inf"))],
    ),
    (
        "backticked project.dataset.table",
        "SELECT id FROM `my-project.raw.t`",
        {},
        [(1,)],
    ),
    (
        "timestamp of a local date in a parameter zone",
        "SELECT TIMESTAMP(DATE '2024-01-01', @tz)",
        {"tz": "Asia/Seoul"},
        [(dt.datetime(2023, 12, 31, 15, 0, tzinfo=UTC),)],
    ),
    (
        "date of a timestamp in a zone",
        "SELECT DATE(ts, @tz), DATE(ts) FROM raw.t",
        {"tz": "Asia/Seoul"},
        [(dt.date(2024, 1, 2), dt.date(2024, 1, 1))],
    ),
    (
        "numeric keeps 9 decimals",
        "SELECT CAST('1.123456789' AS NUMERIC), CAST('2.5' AS BIGNUMERIC)",
        {},
        [(Decimal("1.123456789"), Decimal("2.5"))],
    ),
    (
        "format with printf placeholders",
        "SELECT FORMAT('%s-%d', 'a', 3)",
        {},
        [("a-3",)],
    ),
    (
        "array_agg with limit",
        "SELECT ARRAY_AGG(v ORDER BY v DESC LIMIT 2) FROM UNNEST([1, 3, 2]) AS v",
        {},
        [([3, 2],)],
    ),
    (
        "qualify, countif, logical_or, timestamp_diff",
        "SELECT COUNTIF(v > 1), LOGICAL_OR(v = 3), "
        "TIMESTAMP_DIFF(TIMESTAMP '2024-01-01 00:01:00', TIMESTAMP '2024-01-01', SECOND) "
        "FROM UNNEST([1, 2, 3]) AS v",
        {},
        [(2, True, 60)],
    ),
    (
        "timestamp_trunc to week starts on Sunday",
        "SELECT TIMESTAMP_TRUNC(TIMESTAMP '2024-01-03 10:00:00+00', WEEK)",
        {},
        [(dt.datetime(2023, 12, 31, tzinfo=UTC),)],
    ),
    (
        "in unnest of an array parameter",
        "SELECT COUNT(*) FROM UNNEST([1, 2, 3]) AS v WHERE v IN UNNEST(@ids)",
        {"ids": [1, 3, 9]},
        [(2,)],
    ),
    (
        "unused parameters are ignored",
        "SELECT @a + 1",
        {"a": 1, "unused": "x"},
        [(2,)],
    ),
]


@pytest.mark.parametrize(
    ("sql", "params", "expected"),
    [pytest.param(sql, params, expected, id=name) for name, sql, params, expected in CASES],
)
def test_bigquery_semantics_on_duckdb(
    con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any], expected: list[Any]
) -> None:
    assert run(con, sql, params) == expected


@pytest.mark.parametrize(
    "sql",
    ["SELECT 1 / 0", "SELECT x / zero FROM raw.t", "SELECT (x / zero) / 2 FROM raw.t"],
)
def test_division_by_zero_raises_like_bigquery(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    with pytest.raises(duckdb.Error, match="division by zero"):
        run(con, sql)


def test_ddl_storage_options_are_dropped_explicitly(con: duckdb.DuckDBPyConnection) -> None:
    sql = (
        "CREATE TABLE raw.p (d DATE, a INT64) PARTITION BY d CLUSTER BY a "
        "OPTIONS (description = 'x', partition_expiration_days = 3)"
    )
    (statement,) = to_duckdb(sql)
    assert "PARTITION" not in statement.sql and "OPTIONS" not in statement.sql.upper()
    con.execute(statement.sql)
    assert con.execute("SELECT COUNT(*) FROM raw.p").fetchall() == [(0,)]


def test_dataset_mapping_and_parameters() -> None:
    mapping = dataset_map({"raw": "raw_dev", "mart": "mart_dev"})
    (statement,) = to_duckdb(
        "SELECT * FROM raw.user_events e JOIN `p.mart.x` m USING (a) WHERE d = @day", mapping
    )
    assert '"raw_dev"."user_events"' in statement.sql
    assert '"mart_dev"."x"' in statement.sql
    assert "$day" in statement.sql
    assert statement.params == ("day",)
    assert statement.tables == ("raw.user_events", "mart.x")
    assert statement.kind == "select"


def test_ctes_and_unknown_schemas_are_not_mapped() -> None:
    (statement,) = to_duckdb("WITH raw AS (SELECT 1 AS a) SELECT a FROM raw", dataset_map({}))
    assert statement.tables == ()
    assert referenced_tables("WITH e AS (SELECT * FROM raw.user_events) SELECT * FROM e") == (
        "raw.user_events",
    )


def test_script_statement_kinds() -> None:
    statements = to_duckdb(
        "BEGIN TRANSACTION; DELETE FROM mart.x WHERE d BETWEEN @start AND @end; "
        "INSERT INTO mart.x (d) SELECT @start; "
        "MERGE mart.x T USING (SELECT 1 AS d) S ON T.d = S.d "
        "WHEN NOT MATCHED THEN INSERT (d) VALUES (d); "
        "COMMIT TRANSACTION"
    )
    assert [s.kind for s in statements] == [
        "transaction",
        "delete",
        "insert",
        "merge",
        "transaction",
    ]
    assert statements[1].params == ("start", "end")


def test_transpilation_is_cached() -> None:
    sql = "SELECT DATE_SUB(@day, INTERVAL 2 DAY) AS d"
    assert to_duckdb(sql) is to_duckdb(sql)


def test_invalid_sql_is_a_warehouse_error() -> None:
    with pytest.raises(WarehouseError):
        to_duckdb("SELECT FROM WHERE (")


@pytest.mark.parametrize(
    ("names", "project", "expected"),
    [
        ({}, None, "SELECT a FROM raw.user_events WHERE d = @day"),
        ({"raw": "raw_dev"}, None, "SELECT a FROM raw_dev.user_events WHERE d = @day"),
        ({}, "proj", "SELECT a FROM proj.raw.user_events WHERE d = @day"),
    ],
)
def test_to_bigquery_maps_only_table_names(
    names: dict[str, str], project: str | None, expected: str
) -> None:
    sql = "SELECT a FROM raw.user_events WHERE d = @day"
    assert to_bigquery(sql, dataset_map(names), project) == expected


def test_inline_hint_evaluates_a_cte_where_it_is_read(con: duckdb.DuckDBPyConnection) -> None:
    # both CTEs are read twice: DuckDB materialises `small` (its default), and evaluates the
    # hinted `wide` at each read (BigQuery's behaviour for every CTE); the answer is the same
    sql = """
    with wide as (

        -- duckdb: not materialized (read twice, each time for one column)
        select id, x, arr from raw.t

    ),

    small as (

        -- read twice as well, left to DuckDB
        select count(*) as n from raw.t

    )

    select a.id, b.x, small.n + other.n as n
    from wide as a
    inner join wide as b on b.id = a.id
    cross join small
    cross join small as other
    """
    (statement,) = to_duckdb(sql)
    assert statement.sql.count("NOT MATERIALIZED") == 1
    assert "wide AS NOT MATERIALIZED (" in statement.sql
    plan = "\n".join(row[1] for row in con.execute("EXPLAIN " + statement.sql).fetchall())
    # materialised CTEs are CTE nodes of the plan: `small` only (`wide` is read from raw.t)
    assert "CTE Name: small" in plan and "CTE Name: wide" not in plan
    assert con.execute(statement.sql).fetchall() == [(1, 5, 2)]
    unhinted = statement.sql.replace(" NOT MATERIALIZED", "")
    assert con.execute(unhinted).fetchall() == [(1, 5, 2)]
    unhinted_plan = "\n".join(row[1] for row in con.execute("EXPLAIN " + unhinted).fetchall())
    assert "CTE Name: small" in unhinted_plan and "CTE Name: wide" in unhinted_plan


def test_inline_hint_counts_only_at_the_top_of_the_body() -> None:
    (statement,) = to_duckdb(
        "with a as (select 1 as x /* duckdb: not materialized */) select * from a, a as b"
    )
    assert "NOT MATERIALIZED" not in statement.sql
