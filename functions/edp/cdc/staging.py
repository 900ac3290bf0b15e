"""Current-state staging tables (``staging.orders`` ...) rebuilt from ``raw.cdc_*``.

Each model in ``edp/cdc/models/<table>.sql`` is one BigQuery-dialect SELECT returning the full
current state of a source table (latest version per primary key by ``(lsn, tx_position)``,
deletes and truncated versions removed). :func:`refresh_staging` replaces the staging table's
contents with it in one script. A full rebuild is what makes the result independent of delivery
order and duplicates; the raw change logs are clustered by primary key, so the scan is cheap at
the shop's volume, and each cdc_flush invocation (once a minute) refreshes only the tables it
wrote rows to.

Example (needs a warehouse):
    >>> refresh_staging(get_warehouse(), ["orders"])          # doctest: +SKIP
    {'staging.orders': 1234}
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from edp.contracts.catalog import load_catalog
from edp.settings import get_settings
from edp.warehouse.port import Warehouse

MODELS_DIR = Path(__file__).parent / "models"


def model_sql(table: str) -> str:
    """The SELECT of ``staging.<table>`` (BigQuery dialect)."""
    return (MODELS_DIR / f"{table}.sql").read_text(encoding="utf-8")


def refresh_sql(table: str) -> str:
    """The script that replaces ``staging.<table>`` with the model's result."""
    spec = load_catalog().table(f"staging.{table}")
    columns = ", ".join(spec.column_names)
    select = model_sql(table).strip().rstrip(";")
    # One transaction: readers never see the table empty or half-built.
    return (
        "BEGIN TRANSACTION;\n"
        f"DELETE FROM {spec.ref} WHERE TRUE;\n"
        f"INSERT INTO {spec.ref} ({columns})\n{select};\n"
        "COMMIT TRANSACTION;\n"
    )


def captured_tables() -> tuple[str, ...]:
    """Staging table names of the captured source tables (``shop.orders`` -> ``orders``)."""
    return tuple(source.split(".", 1)[1] for source in get_settings().cdc_tables)


def refresh_staging(warehouse: Warehouse, tables: Iterable[str] | None = None) -> dict[str, int]:
    """Rebuild the given staging tables (default: every captured one); row count of each."""
    counts: dict[str, int] = {}
    for table in captured_tables() if tables is None else tables:
        warehouse.execute_script(refresh_sql(table))
        ref = load_catalog().table(f"staging.{table}").ref
        counts[ref] = int(warehouse.query(f"SELECT COUNT(*) AS n FROM {ref}").scalar() or 0)
    return counts
