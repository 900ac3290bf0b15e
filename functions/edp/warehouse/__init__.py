"""The warehouse: one port (:mod:`edp.warehouse.port`), two adapters.

``get_warehouse()`` returns the backend ``EDP_WAREHOUSE`` selects: ``bigquery``
(``settings.project``; the REST endpoint can be overridden with ``EDP_BIGQUERY_API_ENDPOINT`` for
an emulator) or ``duckdb`` (embedded, the file ``settings.duckdb_file``). Each call returns a new
warehouse the caller owns and closes.

BigQuery is the production adapter and lives here. DuckDB is the laptop's, in the tooling package
(``edp_tools.warehouse.duckdb_adapter``), which the deployed archive does not contain: it is found
through the ``edp.warehouse`` entry-point group that installing the project registers, so
production code never imports tooling, and a deployed function configured for ``duckdb`` fails
with a clear :class:`~edp.errors.ConfigError` instead of an ImportError.

Example:
    >>> from edp.settings import Settings
    >>> wh = get_warehouse(Settings(_env_file=None, duckdb_path=":memory:"))
    >>> wh.name
    'duckdb'
    >>> wh.close()
"""

from __future__ import annotations

from importlib.metadata import entry_points

from edp.errors import ConfigError
from edp.settings import Settings, get_settings
from edp.warehouse.port import QueryResult, ScriptResult, Warehouse

__all__ = ["QueryResult", "ScriptResult", "Warehouse", "get_warehouse"]

#: Entry-point group of warehouse backends other than BigQuery (``name = module:factory``; the
#: factory takes ``settings=``).
BACKEND_GROUP = "edp.warehouse"


def get_warehouse(settings: Settings | None = None) -> Warehouse:
    """A new warehouse for ``settings`` (default: :func:`edp.settings.get_settings`)."""
    settings = settings or get_settings()
    if settings.warehouse == "bigquery":
        from edp.warehouse.bigquery_adapter import BigQueryWarehouse

        return BigQueryWarehouse(settings=settings)
    found = entry_points(group=BACKEND_GROUP, name=settings.warehouse)
    if not found:
        raise ConfigError(
            f"EDP_WAREHOUSE={settings.warehouse!r}: no such backend installed (the "
            f"{BACKEND_GROUP!r} entry points come with the local tooling: pip install -e "
            "'.[local]')"
        )
    factory = next(iter(found)).load()
    warehouse: Warehouse = factory(settings=settings)
    return warehouse
