"""The warehouse: one port (:mod:`edp.warehouse.port`), two adapters.

``get_warehouse()`` returns the backend ``EDP_WAREHOUSE`` selects: ``duckdb`` (embedded, the
file ``settings.duckdb_file``) or ``bigquery`` (``settings.project``; the REST endpoint can be
overridden with ``EDP_BIGQUERY_API_ENDPOINT`` for an emulator). Each call returns a new
warehouse the caller owns and closes.

Example:
    >>> from edp.settings import Settings
    >>> wh = get_warehouse(Settings(_env_file=None, EDP_DUCKDB_PATH=":memory:"))
    >>> wh.name
    'duckdb'
    >>> wh.close()
"""

from __future__ import annotations

from edp.settings import Settings, get_settings
from edp.warehouse.port import QueryResult, ScriptResult, Warehouse

__all__ = ["QueryResult", "ScriptResult", "Warehouse", "get_warehouse"]


def get_warehouse(settings: Settings | None = None) -> Warehouse:
    """A new warehouse for ``settings`` (default: :func:`edp.settings.get_settings`)."""
    settings = settings or get_settings()
    if settings.warehouse == "bigquery":
        from edp.warehouse.bigquery_adapter import BigQueryWarehouse

        return BigQueryWarehouse(settings=settings)
    from edp.warehouse.duckdb_adapter import DuckDBWarehouse

    return DuckDBWarehouse(settings.duckdb_file, settings=settings)
