"""Reading and writing the agent's tables: check results and the flagged-slot history.

``monitoring.data_quality_checks`` holds one row per check, table and run. The volume detector
leaves slots that earlier runs flagged (``fail`` or ``expected``) out of its training; they are
read back from the same table (a few days of one monitoring partition per week of training).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from edp.quality.model import CheckResult, as_utc
from edp.warehouse.port import Warehouse

RESULTS_TABLE = "monitoring.data_quality_checks"


def write_results(
    warehouse: Warehouse, run_id: str, checked_at: datetime, results: Sequence[CheckResult]
) -> int:
    """Insert one row per result (insert id = check id, so a retried insert is deduplicated)."""
    if not results:
        return 0
    ids = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"{run_id}/{r.check_name}")) for r in results]
    rows = [r.row(run_id, cid, checked_at) for r, cid in zip(results, ids, strict=True)]
    return warehouse.insert_rows(RESULTS_TABLE, rows, row_ids=ids)


def flagged_slots(
    warehouse: Warehouse, now: datetime, weeks: int = 4
) -> dict[str, frozenset[datetime]]:
    """Slot starts of volume windows flagged in the last ``weeks`` weeks (+1 day), per table."""
    since = now - timedelta(days=7 * weeks + 1)
    rows = warehouse.query(
        f"SELECT table_ref, details FROM {RESULTS_TABLE} WHERE checked_at >= @since "
        "AND check_type = 'volume' AND status IN ('fail', 'expected')",
        {"since": since},
    ).rows
    out: dict[str, set[datetime]] = {}
    for row in rows:
        details = row["details"] or {}
        for slot in details.get("slots", []):
            out.setdefault(row["table_ref"], set()).add(as_utc(datetime.fromisoformat(slot)))
    return {table: frozenset(slots) for table, slots in out.items()}
