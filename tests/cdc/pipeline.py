"""Helpers to run the CDC pipeline in tests and compare staging with the source."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from edp.cdc.staging import captured_tables, refresh_staging
from edp.contracts.catalog import load_catalog
from edp.settings import Settings
from edp.warehouse.port import Warehouse
from edp_tools.cdc.reader import CdcReader, ReaderConfig
from edp_tools.cdc.shop import connect, table_shape
from edp_tools.local.processes import wait_until


def confirmed_lsn(dsn: str, slot: str) -> int:
    conn = connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT confirmed_flush_lsn - '0/0'::pg_lsn FROM pg_replication_slots "
                "WHERE slot_name = %s",
                (slot,),
            )
            row = cur.fetchone()
        return -1 if row is None or row[0] is None else int(row[0])
    finally:
        conn.close()


def current_lsn(dsn: str) -> int:
    conn = connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")
            return int(cur.fetchone()[0])  # type: ignore[index]
    finally:
        conn.close()


@contextmanager
def running_reader(config: ReaderConfig, settings: Settings) -> Iterator[CdcReader]:
    """A reader streaming in a thread for the duration of the block."""
    reader = CdcReader(config, settings)
    errors: list[BaseException] = []

    def target() -> None:
        try:
            reader.run()
        except BaseException as exc:  # surfaced to the test below
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        wait_until(
            lambda: reader.streaming.is_set() or bool(errors), timeout=60, what="reader streaming"
        )
        if errors:
            raise errors[0]
        yield reader
    finally:
        reader.stop()
        thread.join(timeout=60)
    if errors:
        raise errors[0]


def wait_caught_up(dsn: str, slot: str, timeout: float = 60) -> None:
    """Wait until the slot acknowledged everything committed so far (all of it is published)."""
    target = current_lsn(dsn)
    wait_until(
        lambda: confirmed_lsn(dsn, slot) >= target, timeout=timeout, what="the reader to catch up"
    )


def source_rows(dsn: str, table: str) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """The source table as {pk: row} with psycopg2's Python values."""
    conn = connect(dsn)
    try:
        shape = table_shape(conn, "shop", table)
        names = [c.name for c in shape.columns]
        with conn.cursor() as cur:
            cur.execute(f"SELECT {', '.join(names)} FROM shop.{table}")
            rows = cur.fetchall()
    finally:
        conn.close()
    key_idx = [names.index(k) for k in shape.primary_key]
    return {tuple(r[i] for i in key_idx): tuple(_norm(v) for v in r) for r in rows}


def staging_rows(warehouse: Warehouse, table: str) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    spec = load_catalog().table(f"staging.{table}")
    source_cols = [f.name for f in spec.fields if f.name not in ("lsn", "source_ts", "ingested_at")]
    result = warehouse.query(f"SELECT {', '.join(source_cols)} FROM {spec.ref}")
    out = {}
    for row in result.rows:
        values = tuple(_norm(row[c]) for c in source_cols)
        out[tuple(row[k] for k in spec.primary_key)] = values
    return out


def _norm(value: Any) -> Any:
    # psycopg2 returns uuid columns as str already; numeric as Decimal; keep everything else.
    return value


def compare_all(dsn: str, warehouse: Warehouse) -> dict[str, list[str]]:
    """Refresh staging, then list every difference per table (empty lists = equal)."""
    refresh_staging(warehouse)
    problems: dict[str, list[str]] = {}
    for table in captured_tables():
        src = source_rows(dsn, table)
        stg = staging_rows(warehouse, table)
        diffs: list[str] = []
        for key in sorted(set(src) | set(stg), key=repr):
            if key not in stg:
                diffs.append(f"{key}: missing in staging")
            elif key not in src:
                diffs.append(f"{key}: in staging but deleted in source")
            elif src[key] != stg[key]:
                diffs.append(f"{key}: source {src[key]!r} != staging {stg[key]!r}")
        problems[table] = diffs[:10]
    return problems


def reader_config_for(
    dsn: str, slot: str, settings: Settings, offsets: Any, **overrides: Any
) -> ReaderConfig:
    values: dict[str, Any] = {
        "dsn": dsn,
        "project": settings.project,
        "slot": slot,
        "topic_prefix": settings.cdc_topic_prefix,
        "offsets_path": offsets,
        "heartbeat_interval_s": 0.5,
    }
    values.update(overrides)
    return ReaderConfig(**values)
