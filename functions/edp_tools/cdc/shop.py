"""The shop's source schema: applying it, and reading table shapes from PostgreSQL's catalog.

The DDL lives in ``schemas/cdc/shop.sql`` and ``schemas/cdc/publication.sql`` (the single source
of truth; Cloud SQL gets the same files). The CDC key of a table is its **primary key from
pg_index**, never the replica identity: the tables are ``REPLICA IDENTITY FULL`` so that every
update and delete carries a full before-image, which makes pgoutput flag *every* column as a key.

Example (needs a running PostgreSQL):
    >>> with psycopg2.connect(dsn) as conn:          # doctest: +SKIP
    ...     apply_schema(conn)
    ...     table_shape(conn, "shop", "orders").primary_key
    ('order_id',)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2
from psycopg2.extensions import connection as PgConnection  # noqa: N812

from edp.errors import ConfigError
from edp_tools.cdc.encoding import PgType

SCHEMA_DIR = Path(__file__).resolve().parents[3] / "schemas" / "cdc"
SHOP_SQL = SCHEMA_DIR / "shop.sql"
PUBLICATION_SQL = SCHEMA_DIR / "publication.sql"


def publication_name() -> str:
    """The publication name declared in ``schemas/cdc/publication.sql``."""
    match = re.search(r"CREATE\s+PUBLICATION\s+(\w+)", PUBLICATION_SQL.read_text(encoding="utf-8"))
    if match is None:
        raise ConfigError(f"{PUBLICATION_SQL} declares no publication")
    return match.group(1)


@dataclass(frozen=True)
class ColumnShape:
    name: str
    type_oid: int
    typmod: int
    not_null: bool


@dataclass(frozen=True)
class TableShape:
    """A source table as the catalog describes it."""

    schema: str
    name: str
    relid: int
    columns: tuple[ColumnShape, ...]
    primary_key: tuple[str, ...]

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


def apply_schema(conn: PgConnection) -> None:
    """Create the shop tables and the publication (idempotent)."""
    with conn.cursor() as cur:
        cur.execute(SHOP_SQL.read_text(encoding="utf-8"))
        cur.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (publication_name(),))
        if cur.fetchone() is None:
            cur.execute(PUBLICATION_SQL.read_text(encoding="utf-8"))
    conn.commit()


def table_shape(conn: PgConnection, schema: str, name: str) -> TableShape:
    """Columns (in attnum order) and primary key (in index order) of ``schema.name``."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s",
            (schema, name),
        )
        row = cur.fetchone()
        if row is None:
            raise ConfigError(f"table {schema}.{name} does not exist in the source database")
        relid = int(row[0])
        return table_shape_by_relid(cur, relid, schema, name)


def table_shape_by_relid(cur: Any, relid: int, schema: str, name: str) -> TableShape:
    cur.execute(
        "SELECT attname, atttypid, atttypmod, attnotnull FROM pg_attribute "
        "WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        (relid,),
    )
    columns = tuple(ColumnShape(r[0], int(r[1]), int(r[2]), bool(r[3])) for r in cur.fetchall())
    cur.execute(
        "SELECT a.attname FROM pg_index i "
        "CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) "
        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
        "WHERE i.indrelid = %s AND i.indisprimary ORDER BY k.ord",
        (relid,),
    )
    pk = tuple(r[0] for r in cur.fetchall())
    if not pk:
        raise ConfigError(f"table {schema}.{name} has no primary key; CDC needs one")
    return TableShape(schema, name, relid, columns, pk)


def connect(dsn: str, **kwargs: Any) -> PgConnection:
    """A connection with the session settings CDC text values depend on (UTC, ISO dates)."""
    conn: PgConnection = psycopg2.connect(dsn, options="-c TimeZone=UTC -c DateStyle=ISO", **kwargs)
    return conn


def load_types(cur: Any) -> dict[int, PgType]:
    """pg_type rows the encoders need beyond the built-in OIDs: enums (with labels), domains,
    arrays and extension types such as hstore."""
    cur.execute(
        "SELECT t.oid, t.typname, t.typtype, "
        "CASE WHEN t.typcategory = 'A' THEN t.typelem ELSE 0 END, t.typbasetype, "
        "COALESCE((SELECT array_agg(e.enumlabel::text ORDER BY e.enumsortorder) "
        "          FROM pg_enum e WHERE e.enumtypid = t.oid), '{}'::text[]) "
        "FROM pg_type t WHERE t.oid >= 16384 OR t.typcategory = 'A' OR t.typtype = 'd'"
    )
    return {
        int(r[0]): PgType(int(r[0]), r[1], r[2], int(r[3]), int(r[4]), tuple(r[5]))
        for r in cur.fetchall()
    }
