"""A user adds a CDC table by declaring it in schemas/ (two YAMLs), nothing else: the topics and
flush subscriptions, the flush into raw and the staging model follow. The table holds a column
of every type of :mod:`tests.cdc.type_cases`, so this also checks that the flush decodes every
Debezium logical type to the right warehouse type (exact NUMERIC/BIGNUMERIC, TIME, INTERVAL as a
duration, arrays as REPEATED, jsonb as JSON).

Left out of the declared table, on purpose: ``nvs_big`` (39 digits: BigQuery BIGNUMERIC holds
it, the local DuckDB DECIMAL stops at 38) and ``tz_zero`` (year 21016: beyond BigQuery's
TIMESTAMP range, such a row is dead-lettered with its reason).
"""

from __future__ import annotations

import datetime as dt
import math
import shutil
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from edp.bus.topology import build_topology
from edp.cdc.flush import CdcFlusher
from edp.cdc.staging import refresh_staging
from edp.cdc.topology import ensure_cdc_topology
from edp.contracts.catalog import Catalog
from edp.settings import Settings, get_settings
from edp_tools.cdc.shop import connect
from edp_tools.contracts.build import catalog_problems, load_tables, repo_root
from edp_tools.local.pubsub_emulator import PubSubEmulator
from edp_tools.warehouse.duckdb_adapter import DuckDBWarehouse

from .conftest import ShopDb, reader_config
from .pipeline import running_reader, wait_caught_up
from .type_cases import CASES, DAY_2016_11_04, INTERVAL_1Y2M3D4H5M6_78S, SETUP_SQL

UTC = dt.UTC
EXCLUDED = {"nvs_big", "tz_zero"}
# column -> (BigQuery type, REPEATED?, value staging must hold). Values are what the source
# literal means (PostgreSQL docs), in the Python type the warehouse returns.
EXPECTED: dict[str, tuple[str, bool, Any]] = {
    "si": ("INT64", False, 1),
    "i": ("INT64", False, 123456),
    "bi": ("INT64", False, 1234567890123),
    "o": ("INT64", False, 4000000000),
    "b": ("BOOL", False, True),
    "r": ("FLOAT64", False, 3.3),
    "db": ("FLOAT64", False, 4.44),
    "r_nan": ("FLOAT64", False, math.nan),
    "db_pinf": ("FLOAT64", False, math.inf),
    "db_ninf": ("FLOAT64", False, -math.inf),
    "d": ("NUMERIC", False, Decimal("1.10")),
    "dvs": ("BIGNUMERIC", False, Decimal("10.1111")),
    "nvs_int": ("BIGNUMERIC", False, Decimal("22")),
    "nvs_zeros": ("BIGNUMERIC", False, Decimal("22.22")),
    "d_nan": ("NUMERIC", False, None),
    "nvs_nan": ("BIGNUMERIC", False, None),
    "csh": ("NUMERIC", False, Decimal("1234.11")),
    "csh_neg": ("NUMERIC", False, Decimal("-1234.11")),
    "vcv": ("STRING", False, "bb"),
    "ch": ("STRING", False, "cdef"),
    "ch_pad": ("STRING", False, "ab   "),
    "t": ("STRING", False, "some text"),
    "nm": ("STRING", False, "abc"),
    "u": ("STRING", False, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
    "j": ("JSON", False, {"bar": "baz"}),
    "jb": ("JSON", False, {"bar": "baz"}),
    "x": ("STRING", False, "<foo>bar</foo>"),
    "ba": ("BYTES", False, b"\x01\x02\x03"),
    "dt": ("DATE", False, dt.date(2016, 11, 4)),
    "dt_pinf": ("DATE", False, dt.date.max),
    "dt_ninf": ("DATE", False, dt.date.min),
    "ti": ("TIME", False, dt.time(13, 51, 30)),
    "tip": ("TIME", False, dt.time(13, 51, 30, 123000)),
    # 24:00:00 is valid in PostgreSQL; BigQuery TIME ends at 23:59:59.999999.
    "ttf": ("TIME", False, dt.time(23, 59, 59, 999999)),
    "ttz": ("STRING", False, "11:51:30.123789Z"),
    "tptz": ("STRING", False, "11:51:30.123Z"),
    "ts": ("DATETIME", False, dt.datetime(2016, 11, 4, 13, 51, 30, 123456)),
    "ts_ms": ("DATETIME", False, dt.datetime(2016, 11, 4, 13, 51, 30, 123000)),
    "ts_pinf": ("DATETIME", False, dt.datetime.max),
    "ts_ninf": ("DATETIME", False, dt.datetime.min),
    "tz": ("TIMESTAMP", False, dt.datetime(2016, 11, 4, 11, 51, 30, 123456, tzinfo=UTC)),
    "tz_pad": ("TIMESTAMP", False, dt.datetime(2016, 11, 4, 13, 51, 30, 100000, tzinfo=UTC)),
    "tz_p3": ("TIMESTAMP", False, dt.datetime(2016, 11, 4, 13, 51, 30, 100000, tzinfo=UTC)),
    "tz_pinf": ("TIMESTAMP", False, dt.datetime.max.replace(tzinfo=UTC)),
    "tz_ninf": ("TIMESTAMP", False, dt.datetime.min.replace(tzinfo=UTC)),
    "it": ("INTERVAL", False, dt.timedelta(microseconds=INTERVAL_1Y2M3D4H5M6_78S)),
    "it_neg": ("INTERVAL", False, dt.timedelta(hours=-22)),
    "int_array": ("INT64", True, [1, 2, 3]),
    "int_array_null": ("INT64", True, [1, None, 3]),
    "bigint_array": ("INT64", True, [1550166368505037572]),
    "text_array": ("STRING", True, ["one", "two", "three"]),
    "quoted_array": ("STRING", True, ["a,b", 'c"d', None]),
    "date_array": ("DATE", True, [dt.date(2016, 11, 4), dt.date(2016, 11, 5)]),
    "varnumeric_array": ("BIGNUMERIC", True, [Decimal("1.1"), Decimal("2.22"), Decimal("3.333")]),
    "uuid_array": ("STRING", True, ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"]),
    "jsonb_array": ("STRING", True, ['{"bar": "baz"}', '{"foo": "qux"}']),
    "tz_array": ("TIMESTAMP", True, [dt.datetime(2020, 4, 1, 11, 51, 2, tzinfo=UTC)]),
    "mood": ("STRING", False, "happy"),
    "moods": ("STRING", True, ["ok", "happy"]),
    "hs": ("JSON", False, {"key1": "val1", "key2": None}),
    "hs_mul": ("JSON", False, {"key4": "val4", "key5": None}),
    "i4r": ("STRING", False, "[1000,6000)"),
    "numr": ("STRING", False, "[5.3,6.3)"),
    "tsr": ("STRING", False, '["2019-03-31 15:30:00",infinity)'),
    "dr": ("STRING", False, "[2019-03-31,infinity)"),
    "inet": ("STRING", False, "192.168.2.0/12"),
    "cidr": ("STRING", False, "192.168.100.128/25"),
    "mac": ("STRING", False, "08:00:2b:01:02:03"),
    "mac8": ("STRING", False, "08:00:2b:01:02:03:04:05"),
    "p": ("STRING", False, "POINT(1.0 1.0)"),
    "bol2": ("BOOL", False, True),
    "bs": ("BYTES", False, b"\x03"),
    "bs7": ("BYTES", False, b"\x40"),
    "bvu": ("BYTES", False, b"\x05"),
    "posint": ("INT64", False, 7),
}
assert (dt.date(2016, 11, 4) - dt.date(1970, 1, 1)).days == DAY_2016_11_04
DECIMALS = {"d": (3, 2), "csh": (20, 2), "csh_neg": (20, 2)}
COLUMNS = [c for c in CASES if c[0] not in EXCLUDED]


def _field(name: str) -> str:
    kind, repeated, _ = EXPECTED[name]
    extra = ""
    if name in DECIMALS:
        extra = f", precision: {DECIMALS[name][0]}, scale: {DECIMALS[name][1]}"
    mode = ", mode: REPEATED" if repeated else ""
    return f'  - {{name: {name}, type: {kind}{mode}{extra}, description: "{name}."}}'


RAW_META = """  - {name: op, type: STRING, mode: REQUIRED, description: "Debezium op."}
  - {name: lsn, type: INT64, mode: REQUIRED, description: "source.lsn."}
  - {name: tx_id, type: INT64, description: "source.txId."}
  - {name: tx_position, type: INT64, mode: REQUIRED, description: "transaction.total_order."}
  - {name: snapshot, type: BOOL, mode: REQUIRED, description: "Snapshot row."}
  - {name: source_ts, type: TIMESTAMP, mode: REQUIRED, description: "Commit time."}
  - {name: change_id, type: STRING, mode: REQUIRED, description: "<key JSON>:<lsn>."}
  - {name: message_id, type: STRING, description: "Pub/Sub message id."}
  - {name: ingested_at, type: TIMESTAMP, mode: REQUIRED, description: "Write time."}
"""
STAGING_META = """  - {name: lsn, type: INT64, mode: REQUIRED, description: "Version."}
  - {name: source_ts, type: TIMESTAMP, mode: REQUIRED, description: "Commit time."}
  - {name: ingested_at, type: TIMESTAMP, mode: REQUIRED, description: "Write time."}
"""


def _declare(root: Path) -> Catalog:
    """Copy schemas/ and add the two YAMLs a user writes for shop.all_types."""
    shutil.copytree(repo_root() / "schemas", root / "schemas")
    fields = "\n".join(['  - {name: id, type: INT64, description: "Key."}'])
    fields += "\n" + "\n".join(_field(c[0]) for c in COLUMNS) + "\n"
    (root / "schemas/tables/raw/cdc_all_types.yaml").write_text(
        "description: Every change of shop.all_types.\n"
        f"fields:\n{fields}{RAW_META}"
        "partitioning: {field: ingested_at, type: DAY, expiration_days: 90}\n"
        "clustering: [id]\n"
        "primary_key: [change_id]\n"
        "cdc_source: shop.all_types\n",
        encoding="utf-8",
    )
    (root / "schemas/tables/staging/all_types.yaml").write_text(
        "description: Current state of shop.all_types.\n"
        f"fields:\n{fields}{STAGING_META}"
        "clustering: [id]\n"
        "primary_key: [id]\n",
        encoding="utf-8",
    )
    catalog = load_tables(root)
    assert catalog_problems(catalog) == []
    return catalog


@pytest.fixture
def declared(
    tmp_path: Path, pubsub_emulator: PubSubEmulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Catalog, Settings]]:
    catalog = _declare(tmp_path)
    # As after `edp schemas build`: the packaged catalogue holds the declaration (the settings'
    # captured tables default to its cdc_source list).
    import edp.contracts.catalog as catalog_module

    monkeypatch.setattr(catalog_module, "load_catalog", lambda: catalog)
    suffix = uuid.uuid4().hex[:8]
    monkeypatch.setenv("EDP_CDC_TOPIC_PREFIX", f"cdc{suffix}")
    monkeypatch.setenv("EDP_CDC_SUBSCRIPTION_PREFIX", f"cdc-flush{suffix}")
    monkeypatch.setenv("EDP_CDC_DEAD_LETTER_TOPIC", f"cdc-dead-letter{suffix}")
    monkeypatch.setenv("EDP_TOPIC_EVENTS_DEAD_LETTER", f"events-dead-letter{suffix}")
    monkeypatch.delenv("EDP_CDC_TABLES", raising=False)
    get_settings.cache_clear()
    settings = get_settings()
    yield catalog, settings
    get_settings.cache_clear()


def test_a_table_declared_in_schemas_flows_to_staging_with_every_type(
    shop_db: ShopDb, declared: tuple[Catalog, Settings], tmp_path: Path
) -> None:
    catalog, settings = declared
    # Topics and flush subscriptions follow from the declaration.
    assert "shop.all_types" in settings.cdc_tables
    topology = build_topology(settings)
    assert f"{settings.cdc_subscription_prefix}.shop.all_types" in {
        s.name for s in topology.subscriptions
    }
    ensure_cdc_topology(settings)

    conn = connect(shop_db.dsn)
    names = ", ".join(["id"] + [c[0] for c in COLUMNS])
    values = ", ".join(c[2] for c in COLUMNS)
    with conn.cursor() as cur:
        cur.execute(SETUP_SQL)
        cur.execute(
            "CREATE TABLE shop.all_types (id integer PRIMARY KEY, "
            + ", ".join(f"{c[0]} {c[1]}" for c in COLUMNS)
            + ")"
        )
        cur.execute("ALTER PUBLICATION edp_cdc ADD TABLE shop.all_types")
        cur.execute(f"INSERT INTO shop.all_types ({names}) VALUES (1, {values})")
    conn.commit()
    with running_reader(reader_config(shop_db, settings, tmp_path), settings):
        with conn.cursor() as cur:
            cur.execute("SET search_path = shop, public")
            cur.execute(f"INSERT INTO shop.all_types ({names}) VALUES (2, {values})")
        conn.commit()
        wait_caught_up(shop_db.dsn, shop_db.slot)
    conn.close()

    warehouse = DuckDBWarehouse(tmp_path / "warehouse.duckdb", catalog=catalog, settings=settings)
    try:
        warehouse.create_tables()
        fast = settings.model_copy(update={"cdc_flush_interval_sec": 0.3})
        flusher = CdcFlusher(warehouse, fast, catalog=catalog)
        flusher.run(until_idle_s=1.0, max_run_s=120)
        assert flusher.stats.dead_lettered == 0
        assert flusher.stats.per_table.get("raw.cdc_all_types") == 2
        refresh_staging(warehouse, ["all_types"], catalog=catalog)
        rows = warehouse.query("SELECT * FROM staging.all_types ORDER BY id").rows
    finally:
        warehouse.close()

    assert [r["id"] for r in rows] == [1, 2]  # snapshot and streaming path
    for row in rows:
        for column, (_, _, expected) in EXPECTED.items():
            if column in EXCLUDED:
                continue
            value = row[column]
            if isinstance(expected, float) and math.isnan(expected):
                assert math.isnan(value), column
                continue
            assert value == expected, f"{column}: {value!r} != {expected!r}"
            if isinstance(expected, Decimal):
                assert value.as_tuple().exponent <= expected.as_tuple().exponent, column
