"""Golden cases of the ETL models: data files in ``golden/``, hand-computed expectations.

Each case file holds ``steps`` (``insert`` rows into tables, ``run`` a model for a date) and
``expect``ed rows of a table (selected columns, compared as sorted lists). Inserted rows only
spell out what the case is about; :data:`DEFAULTS` fills the rest of each table's required
columns, and values are typed from the catalogue (ISO strings -> TIMESTAMP, etc.).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from edp.contracts.catalog import FieldSpec, load_catalog
from edp.etl.runner import EtlRunner
from edp.settings import Settings
from edp.warehouse.port import Warehouse

GOLDEN = Path(__file__).parent / "golden"
KST = ZoneInfo("Asia/Seoul")


def _ts(value: Any) -> dt.datetime:
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))


def _raw_defaults(row: dict[str, Any]) -> dict[str, Any]:
    ts = row["event_timestamp"]
    return {
        "event_type": "page_view",
        "received_at": row.get("ingested_at", ts),
        "ingested_at": ts,
        "schema_version": "1.0",
        "device_type": "mobile",
        "platform": "ios",
    }


def _staging_defaults(row: dict[str, Any]) -> dict[str, Any]:
    ts = row["event_timestamp"]
    return {
        "event_date": _ts(ts).astimezone(KST).date(),
        "event_type": "page_view",
        "ingested_at": ts,
        "session_id": f"s-{row['user_key']}",
        "session_source": "client",
        "device_type": "mobile",
        "platform": "ios",
        "items": [],
        "is_bot": False,
        "is_test": False,
        "is_client_event": row.get("platform", "ios") in ("web", "ios", "android")
        and row.get("event_type", "page_view") != "refund",
        "copies_received": 1,
    }


def _first_seen_defaults(row: dict[str, Any]) -> dict[str, Any]:
    day = row["first_seen_date"]
    return {
        "first_seen_at": dt.datetime.combine(day, dt.time(), KST),
        "first_device_type": "mobile",
        "first_platform": "ios",
    }


def _orders_defaults(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "order_uuid": f"00000000-0000-4000-8000-{row['order_id']:012d}",
        "currency": "KRW",
        "subtotal": row["total_amount"],
        "discount": "0",
        "shipping_fee": "0",
        "updated_at": row["created_at"],
        "lsn": row["order_id"],
        "source_ts": row["created_at"],
        "ingested_at": row["created_at"],
    }


DEFAULTS: Mapping[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "raw.user_events": _raw_defaults,
    "staging.user_events": _staging_defaults,
    "staging.user_first_seen": _first_seen_defaults,
    "staging.orders": _orders_defaults,
}


def _typed(field: FieldSpec, value: Any) -> Any:
    if value is None:
        return None
    if field.mode == "REPEATED":
        return [_typed(field.model_copy(update={"mode": "NULLABLE"}), v) for v in value]
    if field.type == "RECORD":
        return {f.name: _typed(f, value.get(f.name)) for f in field.fields}
    if field.type == "TIMESTAMP":
        return _ts(value)
    if field.type == "DATE":
        return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
    if field.type in ("NUMERIC", "BIGNUMERIC"):
        return Decimal(str(value))
    if field.type == "FLOAT64":
        return float(value)
    if field.type == "JSON":
        return json.dumps(value)
    return value


def typed_rows(table: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows completed with the table's defaults and typed from the catalogue."""
    spec = load_catalog().table(table)
    out = []
    for given in rows:
        row = {**DEFAULTS.get(table, lambda _r: {})(given), **given}
        out.append({name: _typed(spec.column(name), value) for name, value in row.items()})
    return out


def normalise(value: Any) -> Any:
    """Comparable plain value: dates as ISO text, timestamps as UTC ISO, decimals as floats."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def same(actual: Any, expected: Any) -> bool:
    a, e = normalise(actual), normalise(expected)
    if isinstance(a, float) or isinstance(e, float):
        return a is not None and e is not None and math.isclose(a, e, rel_tol=1e-9, abs_tol=1e-9)
    return bool(a == e)


def load_case(path: Path) -> dict[str, Any]:
    case: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return case


def play(case: Mapping[str, Any], warehouse: Warehouse, settings: Settings) -> EtlRunner:
    """Run a case's steps against ``warehouse``; returns the runner used."""
    runner = EtlRunner(
        warehouse, settings=settings.model_copy(update=case.get("settings", {})), trigger="test"
    )
    for step in case["steps"]:
        if "insert" in step:
            for table, rows in step["insert"].items():
                warehouse.insert_rows(table, typed_rows(table, rows))
        else:
            run = step["run"]
            runner.run(run["date"], run.get("select"), run.get("lookback_days"))
    return runner


def fetch(warehouse: Warehouse, table: str, columns: list[str]) -> list[list[Any]]:
    """Selected columns of every row of ``table``, sorted (the catalogue checks the names)."""
    spec = load_catalog().table(table)
    for column in columns:
        spec.column(column)
    partition = spec.partitioning.field if spec.partitioning else None
    where = f" WHERE {partition} IS NOT NULL" if partition else ""
    result = warehouse.query(f"SELECT {', '.join(columns)} FROM {table}{where}")
    rows = [[normalise(r[c]) for c in columns] for r in result.rows]
    return sorted(rows, key=lambda r: [(v is None, str(v)) for v in r])


def mismatches(actual: list[list[Any]], expected: list[list[Any]]) -> list[str]:
    """Human-readable differences between two sorted row lists (empty when equal)."""
    problems = []
    if len(actual) != len(expected):
        problems.append(f"{len(actual)} rows, expected {len(expected)}")
    for i, (a, e) in enumerate(zip(actual, expected, strict=False)):
        if len(a) != len(e) or not all(same(x, y) for x, y in zip(a, e, strict=True)):
            problems.append(f"row {i}: got {a}, expected {[normalise(v) for v in e]}")
    return problems
