"""DuckDB DDL: every catalogue table is created by real DuckDB, with the documented types."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import duckdb
import pytest

from edp.contracts.catalog import FieldSpec, TableSpec, load_catalog
from edp.errors import ContractError
from edp_tools.contracts.build import DUCKDB_DIR, repo_root
from edp_tools.contracts.duckdb_ddl import duckdb_create_table_sql, duckdb_type

TABLES = load_catalog().tables


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect(":memory:")
    yield connection
    connection.close()


def _columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> dict[str, str]:
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        [schema, table],
    ).fetchall()
    return {name: kind for name, kind in rows}


@pytest.mark.parametrize("table", TABLES, ids=[t.ref for t in TABLES])
def test_every_table_is_created_with_every_column(
    con: duckdb.DuckDBPyConnection, table: TableSpec
) -> None:
    schema = f"edp_{table.dataset}"  # a configured dataset name differs from the logical one
    con.execute(f'CREATE SCHEMA "{schema}"')
    con.execute(duckdb_create_table_sql(table, schema))
    con.execute(duckdb_create_table_sql(table, schema))  # IF NOT EXISTS: rerunnable

    assert list(_columns(con, schema, table.name)) == list(table.column_names)


def test_the_committed_snapshots_run_in_duckdb(con: duckdb.DuckDBPyConnection) -> None:
    snapshots = sorted((repo_root() / DUCKDB_DIR).glob("*.sql"))
    assert [p.stem for p in snapshots] == sorted({t.dataset for t in TABLES})
    for path in snapshots:
        con.execute(path.read_text())
    tables = con.execute(
        "SELECT table_schema || '.' || table_name FROM information_schema.tables"
    ).fetchall()
    assert sorted(r[0] for r in tables) == sorted(t.ref for t in TABLES)


def test_user_events_round_trips_a_nested_row(con: duckdb.DuckDBPyConnection) -> None:
    table = load_catalog().table("raw.user_events")
    con.execute('CREATE SCHEMA "raw"')
    con.execute(duckdb_create_table_sql(table, "raw"))
    con.execute(
        """
        INSERT INTO raw.user_events (event_id, event_type, event_timestamp, received_at,
            ingested_at, device_type, platform, schema_version, items, params, value)
        VALUES ('e1', 'purchase', TIMESTAMPTZ '2026-11-26 01:00:00+00',
            TIMESTAMPTZ '2026-11-26 01:00:01+00', TIMESTAMPTZ '2026-11-26 01:00:01+00',
            'mobile', 'ios', '1.0',
            [{'item_id': 'p1', 'price': 10.5, 'quantity': 2}], '{"search_term": "shoes"}', 21.0)
        """
    )
    row = con.execute(
        "SELECT items[1].item_id, items[1].quantity * items[1].price, "
        "params->>'$.search_term', len(items) FROM raw.user_events"
    ).fetchone()
    assert row == ("p1", 21.0, "shoes", 1)


def test_required_columns_are_not_null(con: duckdb.DuckDBPyConnection) -> None:
    table = load_catalog().table("raw.bad_events")
    con.execute('CREATE SCHEMA "raw"')
    con.execute(duckdb_create_table_sql(table, "raw"))
    with pytest.raises(duckdb.ConstraintException):
        con.execute("INSERT INTO raw.bad_events (message_id) VALUES ('m1')")


def _field(kind: str, mode: str = "NULLABLE", **extra: object) -> FieldSpec:
    return FieldSpec.model_validate(
        {"name": "f", "type": kind, "mode": mode, "description": "F.", **extra}
    )


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        (_field("STRING"), "VARCHAR"),
        (_field("BYTES"), "BLOB"),
        (_field("INT64"), "BIGINT"),
        (_field("FLOAT64"), "DOUBLE"),
        (_field("NUMERIC"), "DECIMAL(38, 9)"),
        (_field("NUMERIC", precision=12, scale=2), "DECIMAL(12, 2)"),
        (_field("NUMERIC", precision=10), "DECIMAL(10, 9)"),
        (_field("BIGNUMERIC"), "DECIMAL(38, 18)"),
        (_field("BIGNUMERIC", precision=76, scale=38), "DECIMAL(38, 38)"),
        (_field("BOOL"), "BOOLEAN"),
        (_field("TIMESTAMP"), "TIMESTAMPTZ"),
        (_field("DATETIME"), "TIMESTAMP"),
        (_field("DATE"), "DATE"),
        (_field("TIME"), "TIME"),
        (_field("JSON"), "JSON"),
        (_field("STRING", "REPEATED"), "VARCHAR[]"),
        (
            _field(
                "RECORD",
                "REPEATED",
                fields=[
                    {"name": "a", "type": "INT64", "description": "A."},
                    {"name": "b", "type": "STRING", "mode": "REPEATED", "description": "B."},
                ],
            ),
            'STRUCT("a" BIGINT, "b" VARCHAR[])[]',
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_type_mapping(field: FieldSpec, expected: str, con: duckdb.DuckDBPyConnection) -> None:
    assert duckdb_type(field) == expected
    con.execute(f"CREATE TABLE t (c {expected})")  # DuckDB accepts it


def test_numeric_keeps_exact_decimals(con: duckdb.DuckDBPyConnection) -> None:
    spec = TableSpec.model_validate(
        {
            "dataset": "staging",
            "name": "money",
            "description": "M.",
            "fields": [{"name": "amount", "type": "NUMERIC", "precision": 12, "scale": 2,
                        "description": "A."}],
        }
    )  # fmt: skip
    con.execute('CREATE SCHEMA "staging"')
    con.execute(duckdb_create_table_sql(spec, "staging"))
    con.execute("INSERT INTO staging.money VALUES (0.1), (0.2)")
    assert con.execute("SELECT sum(amount) FROM staging.money").fetchone() == (Decimal("0.30"),)


def test_identifiers_with_quotes_are_refused() -> None:
    table = load_catalog().table("raw.bad_events")
    with pytest.raises(ContractError):
        duckdb_create_table_sql(table, 'raw"; DROP TABLE x; --')
