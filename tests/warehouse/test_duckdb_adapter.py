"""DuckDB adapter specifics: the real catalogue, the factory, threads, files, dedup, estimates."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from edp.contracts.catalog import load_catalog
from edp.errors import ConfigError, UnknownTableError, WarehouseError
from edp.settings import Settings
from edp.warehouse import get_warehouse
from edp.warehouse.bigquery_adapter import BigQueryWarehouse
from edp.warehouse.port import Warehouse
from edp_tools.warehouse.duckdb_adapter import DuckDBWarehouse

from .test_contract import CATALOG, DAILY, DAY, EVENTS, TS, event

pytestmark = pytest.mark.timeout(60)


def _wh(path: Path | str = ":memory:", **kwargs: Any) -> DuckDBWarehouse:
    warehouse = DuckDBWarehouse(path, catalog=CATALOG, settings=Settings(_env_file=None), **kwargs)
    warehouse.create_tables()
    return warehouse


def test_the_shared_fixture_has_every_catalogue_table(warehouse: Warehouse) -> None:
    assert isinstance(warehouse, DuckDBWarehouse)
    for table in load_catalog():
        assert warehouse.query(f"SELECT COUNT(*) AS n FROM {table.ref}").scalar() == 0
    warehouse.create_tables()  # idempotent on the real catalogue too


def test_get_warehouse_picks_the_backend(tmp_path: Path) -> None:
    local = get_warehouse(Settings(_env_file=None, duckdb_path=tmp_path / "w.duckdb"))
    try:
        assert isinstance(local, DuckDBWarehouse) and local.name == "duckdb"
        assert Path(local.path) == tmp_path / "w.duckdb"
    finally:
        local.close()
    remote = get_warehouse(
        Settings(
            _env_file=None,
            warehouse="bigquery",
            project="p",
            bigquery_api_endpoint="http://127.0.0.1:9",
        )
    )
    assert isinstance(remote, BigQueryWarehouse) and remote.name == "bigquery"


def test_datasets_are_schemas_named_by_settings() -> None:
    settings = Settings(_env_file=None, dataset_raw="raw_dev")
    with DuckDBWarehouse(":memory:", catalog=CATALOG, settings=settings) as wh:
        wh.create_tables()
        wh.insert_rows(EVENTS, [event(0)])
        assert wh.query(f"SELECT COUNT(*) AS n FROM {EVENTS}").scalar() == 1
        schemas = wh.query_arrow("SELECT DISTINCT schema_name FROM duckdb_schemas()").column(0)
        assert "raw_dev" in schemas.to_pylist() and "raw" not in schemas.to_pylist()


def test_data_survives_close_and_read_only_reopen(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    with _wh(path) as wh:
        wh.insert_rows(EVENTS, [event(0), event(1)])
    reader = DuckDBWarehouse(
        path, catalog=CATALOG, settings=Settings(_env_file=None), read_only=True
    )
    try:
        assert reader.query(f"SELECT COUNT(*) AS n FROM {EVENTS}").scalar() == 2
        with pytest.raises(WarehouseError):
            reader.insert_rows(EVENTS, [event(2)])
    finally:
        reader.close()


def test_closed_warehouse_refuses_calls() -> None:
    wh = _wh()
    wh.close()
    wh.close()  # idempotent
    with pytest.raises(WarehouseError, match="closed"):
        wh.query(f"SELECT COUNT(*) AS n FROM {EVENTS}")


def test_readers_and_writers_on_many_threads(tmp_path: Path) -> None:
    wh = _wh(tmp_path / "w.duckdb")
    errors: list[BaseException] = []
    writers, rows_each = 4, 50

    def write(w: int) -> None:
        try:
            for i in range(rows_each):
                wh.insert_rows(EVENTS, [event(i, id=f"w{w}-{i}")], row_ids=[f"w{w}-{i}"])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def read() -> None:
        try:
            for _ in range(50):
                wh.query_arrow(f"SELECT COUNT(*) AS n FROM {EVENTS}")
                wh.query(f"SELECT MAX(n) AS n FROM {EVENTS} WHERE ts >= @t", {"t": TS})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    threads += [threading.Thread(target=read) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert wh.query(f"SELECT COUNT(*) AS n FROM {EVENTS}").scalar() == writers * rows_each
    wh.close()


def test_row_id_memory_is_bounded() -> None:
    with _wh(dedup_window=2) as wh:
        assert wh.insert_rows(EVENTS, [event(0), event(0)], row_ids=["a", "a"]) == 1
        assert wh.insert_rows(EVENTS, [event(1), event(2)], row_ids=["b", "c"]) == 2
        assert wh.insert_rows(EVENTS, [event(2)], row_ids=["c"]) == 0  # still remembered
        assert wh.insert_rows(EVENTS, [event(0)], row_ids=["a"]) == 1  # forgotten: window of 2
        with pytest.raises(WarehouseError):
            wh.insert_rows(EVENTS, [event(3)], row_ids=[])


def test_a_file_named_like_a_dataset_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="named like a dataset"):
        DuckDBWarehouse(tmp_path / "raw.duckdb", catalog=CATALOG, settings=Settings(_env_file=None))


def test_cursors_of_finished_threads_are_released() -> None:
    with _wh() as wh:
        for _ in range(5):
            thread = threading.Thread(
                target=wh.query, args=(f"SELECT COUNT(*) AS n FROM {EVENTS}",)
            )
            thread.start()
            thread.join()
        wh.query(f"SELECT COUNT(*) AS n FROM {EVENTS}")
        assert len(wh._cursors) <= 2  # this thread's, and at most the last finished one's


def test_script_failure_outside_a_transaction_keeps_earlier_statements() -> None:
    with _wh() as wh:
        with pytest.raises(WarehouseError):
            wh.execute_script(
                f"INSERT INTO {DAILY} (day, k) VALUES ('2024-03-10', 'kept'); SELECT 1 / 0"
            )
        assert wh.query(f"SELECT k FROM {DAILY} WHERE day >= '2024-01-01'").rows == [{"k": "kept"}]


def test_unknown_table_anywhere_in_a_script_runs_nothing() -> None:
    with _wh() as wh:
        with pytest.raises(UnknownTableError):
            wh.execute_script(
                f"INSERT INTO {DAILY} (day) VALUES ('2024-03-10'); SELECT * FROM mart.nope"
            )
        assert (
            wh.query(f"SELECT COUNT(*) AS n FROM {DAILY} WHERE day >= '2024-01-01'").scalar() == 0
        )


def test_load_arrow_casts_to_the_table_types() -> None:
    with _wh() as wh:
        data = pa.table(
            {
                "id": ["a"],
                "ts": ["2024-03-10T12:30:15.123456Z"],  # text, cast like a BigQuery load
                "n": pa.array([1], pa.int32()),
                "day": pa.array([DAY], pa.date32()),
            }
        )
        assert wh.load_arrow(EVENTS, data) == 1
        assert wh.query(f"SELECT ts, n, day FROM {EVENTS}").rows == [{"ts": TS, "n": 1, "day": DAY}]
        assert wh.load_arrow(EVENTS, data.slice(0, 0)) == 0


def test_load_arrow_of_the_table_types_stores_the_same_values_as_a_cast_load() -> None:
    # Columns already of the table's Arrow type go in without a CAST; written down by hand
    # here, the values must read back exactly as from text and narrower types that are cast.
    from edp.warehouse.arrow_schema import arrow_schema

    native = pa.Table.from_pylist(
        [
            {
                "id": "a",
                "ts": TS,
                "n": 7,
                "x": 1.5,
                "flag": True,
                "day": DAY,
                "payload": '{"k": [1, 2]}',
                "tags": ["t1", "t2"],
                "items": [{"sku": "s1", "qty": 2, "price": 9.5}],
            }
        ],
        schema=pa.schema([f for f in arrow_schema(CATALOG.table(EVENTS)) if f.name != "amount"]),
    )
    cast = pa.table(
        {
            "id": ["a"],
            "ts": ["2024-03-10T12:30:15.123456Z"],
            "n": pa.array([7], pa.int32()),
            "x": pa.array([1.5], pa.float32()),
            "flag": [True],
            "day": ["2024-03-10"],
            "payload": ['{"k": [1, 2]}'],
            "tags": [["t1", "t2"]],
            "items": [[{"sku": "s1", "qty": 2, "price": 9.5}]],
        }
    )
    expected = {
        "id": "a", "ts": TS, "n": 7, "x": 1.5, "flag": True, "day": DAY,
        "payload": {"k": [1, 2]}, "tags": ["t1", "t2"],
        "items": [{"sku": "s1", "qty": 2, "price": 9.5}],
    }  # fmt: skip
    columns = ", ".join(expected)
    for data in (native, cast):
        with _wh() as wh:
            assert wh.load_arrow(EVENTS, data) == 1
            assert wh.query(f"SELECT {columns} FROM {EVENTS}").rows == [expected]


def test_load_arrow_still_validates_json_text() -> None:
    with _wh() as wh, pytest.raises(WarehouseError):
        wh.load_arrow(EVENTS, pa.table({"id": ["a"], "ts": [TS], "payload": ["{not json"]}))


# --- byte estimates (BigQuery on-demand rules) ----------------------------------------------


ESTIMATES = [
    ("no column read", f"SELECT COUNT(*) AS c FROM {EVENTS}", {}, 0),
    ("INT64 + FLOAT64", f"SELECT n, x FROM {EVENTS}", {}, 2 * 16),
    ("STRING is 2 + UTF-8 bytes", f"SELECT id FROM {EVENTS}", {}, 2 * (2 + 2)),
    ("NUMERIC 16, BOOL 1, DATE 8", f"SELECT amount, flag, day FROM {EVENTS}", {}, 2 * 25),
    # tags ['a','b'] = 2 x (2 + 1); items [{sku 's1', qty, price}] = (2 + 2) + 8 + 8
    ("ARRAY and STRUCT sum their parts", f"SELECT tags, items FROM {EVENTS}", {}, 2 * (6 + 20)),
    ("NULL counts 0", f"SELECT n FROM {EVENTS}", {"n1": None}, 8),
    ("SELECT * reads every column", f"SELECT * FROM {EVENTS}", {}, None),
    (
        "partition filter prunes whole days",
        f"SELECT n FROM {EVENTS} WHERE ts >= @t",
        {"t": TS + dt.timedelta(days=2)},
        1 * (8 + 8),
    ),
    (
        "a filter on part of a day still reads the day",
        f"SELECT n FROM {EVENTS} WHERE ts > @t",
        {"t": TS + dt.timedelta(days=3, minutes=1)},
        1 * (8 + 8),
    ),
    (
        "INSERT ... SELECT reads only its source",
        f"INSERT INTO {DAILY} (day, total) SELECT day, n FROM {EVENTS}",
        {},
        2 * 16,
    ),
]


@pytest.mark.parametrize(
    ("sql", "params", "expected"),
    [pytest.param(sql, params, expected, id=name) for name, sql, params, expected in ESTIMATES],
)
def test_dry_run_estimates(sql: str, params: dict[str, Any], expected: int | None) -> None:
    with _wh() as wh:
        later = TS + dt.timedelta(days=3)
        params = dict(params)
        n1 = params.pop("n1", 1)
        wh.insert_rows(EVENTS, [event(0), event(1, n=n1, payload=None, ts=later)])
        estimate = wh.dry_run(sql, params)
        if expected is None:  # every column: larger than any subset
            assert estimate > wh.dry_run(f"SELECT id, n, x, tags, items, payload FROM {EVENTS}")
        else:
            assert estimate == expected


def test_scripts_report_estimated_bytes_queries_do_not_by_default() -> None:
    with _wh() as wh:
        wh.insert_rows(EVENTS, [event(0)])
        assert wh.query(f"SELECT n FROM {EVENTS}").bytes_processed == 0
        script = wh.execute_script(
            f"INSERT INTO {DAILY} (day, total) SELECT day, n FROM {EVENTS}; SELECT n FROM {EVENTS}"
        )
        assert script.bytes_processed == 16 + 8
    with _wh(estimate_bytes="always") as wh:
        wh.insert_rows(EVENTS, [event(0)])
        assert wh.query(f"SELECT n FROM {EVENTS}").bytes_processed == 8


@pytest.mark.parametrize(("threshold", "checkpointed"), [("1KB", True), ("1GB", False)])
def test_checkpoint_threshold_decides_whether_a_commit_checkpoints(
    tmp_path: Path, threshold: str, checkpointed: bool
) -> None:
    """A commit that takes the write-ahead log past the threshold checkpoints inline (the WAL
    is folded into the file); above it, the WAL keeps the rows until the handle closes."""
    path = tmp_path / "w.duckdb"
    settings = Settings(_env_file=None, duckdb_checkpoint_threshold=threshold)
    warehouse = DuckDBWarehouse(path, catalog=CATALOG, settings=settings)
    warehouse.create_tables()
    warehouse.close()  # the tables are checkpointed: the WAL starts empty
    warehouse = DuckDBWarehouse(path, catalog=CATALOG, settings=settings)
    try:
        warehouse.insert_rows(EVENTS, [event(i) for i in range(200)])
        wal = Path(f"{path}.wal")
        wal_bytes = wal.stat().st_size if wal.exists() else 0
        assert (wal_bytes == 0) is checkpointed, wal_bytes
    finally:
        warehouse.close()
    reopened = DuckDBWarehouse(path, catalog=CATALOG, settings=settings, read_only=True)
    try:
        assert reopened.query(f"SELECT COUNT(*) AS n FROM {EVENTS}").scalar() == 200
    finally:
        reopened.close()
