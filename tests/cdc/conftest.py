"""CDC fixtures: a fresh shop database and a private set of CDC topics per test.

Every test gets its own source database (so its own slot and publication) and its own topic
prefix, subscription prefix and dead-letter topic on the session's emulator, so tests never see
each other's changes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import pytest

from edp.cdc.topology import ensure_cdc_topology
from edp.settings import Settings, get_settings
from edp_tools.cdc.reader import ReaderConfig
from edp_tools.cdc.shop import apply_schema, connect
from edp_tools.local.postgres import PostgresCluster
from edp_tools.local.pubsub_emulator import PubSubEmulator


@dataclass
class ShopDb:
    dsn: str
    dbname: str
    slot: str


@pytest.fixture
def shop_db(postgres: PostgresCluster) -> Iterator[ShopDb]:
    """A fresh database with the shop schema and publication."""
    suffix = uuid.uuid4().hex[:10]
    dbname = f"shop_{suffix}"
    admin = psycopg2.connect(postgres.dsn)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{dbname}"')
    dsn = postgres.dsn_for(dbname)
    conn = connect(dsn)
    apply_schema(conn)
    conn.close()
    try:
        yield ShopDb(dsn, dbname, f"slot_{suffix}")
    finally:
        with admin.cursor() as cur:
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (dbname,),
            )
            cur.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                "WHERE database = %s AND NOT active",
                (dbname,),
            )
            cur.execute(f'DROP DATABASE IF EXISTS "{dbname}"')
        admin.close()


@pytest.fixture
def cdc_settings(
    pubsub_emulator: PubSubEmulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    """Private CDC topic/subscription names on the emulator, created."""
    suffix = uuid.uuid4().hex[:8]
    monkeypatch.setenv("EDP_CDC_TOPIC_PREFIX", f"cdc{suffix}")
    monkeypatch.setenv("EDP_CDC_SUBSCRIPTION_PREFIX", f"cdc-flush{suffix}")
    monkeypatch.setenv("EDP_CDC_DEAD_LETTER_TOPIC", f"cdc-dead-letter{suffix}")
    monkeypatch.setenv("EDP_TOPIC_EVENTS_DEAD_LETTER", f"events-dead-letter{suffix}")
    get_settings.cache_clear()
    settings = get_settings()
    ensure_cdc_topology(settings)
    yield settings


def reader_config(
    db: ShopDb, settings: Settings, tmp_path: Path, **overrides: object
) -> ReaderConfig:
    values: dict[str, object] = {
        "dsn": db.dsn,
        "project": settings.project,
        "slot": db.slot,
        "topic_prefix": settings.cdc_topic_prefix,
        "offsets_path": tmp_path / "offsets.json",
        "heartbeat_interval_s": 0.5,
    }
    values.update(overrides)
    return ReaderConfig(**values)  # type: ignore[arg-type]
