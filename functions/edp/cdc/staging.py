"""Current-state staging tables (``staging.orders`` ...) kept from their ``raw.cdc_*`` change logs.

The SQL is generated from the catalogue (``schemas/tables``): a CDC table is a ``raw.cdc_<name>``
with ``cdc_source`` and a ``staging.<name>`` with a primary key, so declaring those two YAMLs is
all a new captured table needs. Each model keeps, per primary key, the latest version by
``(lsn, tx_position, ingested_at)``; a delete's latest version removes the key, a TRUNCATE
removes every version older than it, and an unchanged TOASTed value that Debezium could not
read (``__debezium_unavailable_value``, tables without REPLICA IDENTITY FULL) keeps the previous
value of that column.

**Incremental refresh (every cdc_flush run).** Raw is partitioned by ingestion day, so the
refresh reads only the changes ingested since staging's newest version (minus
:data:`OVERLAP`, for flushes that committed late) — today's partition — and MERGEs the keys they
touch into staging. What it reads does not grow with the length of the history
(``cdc.refresh.bytes_per_run_1d`` vs ``_30d`` in the benchmarks).

**Full rebuild (periodic check, and when staging is empty).** Replaces staging with the model
over the whole retained log, and reports how many rows it changed (``drift``): non-zero only if a
change older than an applied delete of the same key arrived more than :data:`OVERLAP` late.

**Raw partitions expire (90 days), yet no live row loses its only version.** The full rebuild
re-appends (``op = 'r'``, same ``lsn`` and ``tx_position``, a new ``ingested_at``) the latest
version of every live key whose newest copy in raw is older than ``checkpoint_days``; as long as
``checkpoint_days`` + the rebuild interval is below the expiry, the newest copy of a live key is
always retained, and an expired version is always shadowed by a newer one. Deleted keys need no
copy: the delete is newer than every version it shadows, so it expires last.

Example (needs a warehouse):
    >>> refresh_staging(get_warehouse(), ["orders"])          # doctest: +SKIP
    {'staging.orders': 1234}
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from edp.cdc.debezium import UNAVAILABLE
from edp.contracts.catalog import Catalog, TableSpec, load_catalog
from edp.settings import get_settings
from edp.warehouse.port import Warehouse

log = logging.getLogger(__name__)

#: Changes ingested this long before staging's newest version are read again (late commits).
OVERLAP = dt.timedelta(minutes=15)
#: Columns staging adds to the source columns.
STAGING_META = ("lsn", "source_ts", "ingested_at")
#: Column types whose TOASTed value Debezium replaces by the placeholder: the test that a value
#: of that type is the placeholder (``{c}`` = the column). Arrays keep Debezium's placeholder
#: list (not resolved).
_TOASTABLE = {
    "STRING": f"{{c}} = '{UNAVAILABLE}'",
    "BYTES": f"{{c}} = b'{UNAVAILABLE}'",
    "JSON": f"TO_JSON_STRING({{c}}) = '\"{UNAVAILABLE}\"'",
}


@dataclass(frozen=True)
class CdcModel:
    """One captured table: its change log, its staging table and the SQL between them."""

    raw: TableSpec
    staging: TableSpec

    @property
    def key(self) -> tuple[str, ...]:
        return self.staging.primary_key

    @property
    def columns(self) -> tuple[str, ...]:
        """Source columns, in staging order."""
        return tuple(c for c in self.staging.column_names if c not in STAGING_META)

    @property
    def toastable(self) -> dict[str, str]:
        """Column -> its "is the placeholder" test, for the columns that can carry it."""
        out = {}
        for c in self.columns:
            field = self.staging.column(c)
            if field.type in _TOASTABLE and field.mode != "REPEATED" and c not in self.key:
                out[c] = _TOASTABLE[field.type]
        return out

    def current_sql(self, since: str | None = None) -> str:
        """Latest version per key (with ``op``) of the changes ingested since ``since``
        (a BigQuery expression), or of the whole log."""
        window = f"\n    where ingested_at >= {since}" if since else ""
        keys = ", ".join(self.key)
        order = "lsn, tx_position, ingested_at"
        known = "".join(
            f",\n        last_value(if({ph.format(c=c)}, null, struct({c} as v)) ignore nulls)"
            " over ("
            f"\n            partition by {keys} order by {order}"
            "\n            rows between unbounded preceding and unbounded following"
            f"\n        ) as {c}__known"
            for c, ph in self.toastable.items()
        )
        resolved = ",\n        ".join(
            f"case when {self.toastable[c].format(c=c)} and {c}__known is not null "
            f"then {c}__known.v else {c} end as {c}"
            if c in self.toastable
            else c
            for c in self.columns
        )
        # Only the columns the model uses: BigQuery bills every column a query names, and the
        # change log's bookkeeping (change_id, message_id, snapshot) is not needed here.
        needed = (*self.columns, "op", "lsn", "tx_id", "tx_position", "source_ts", "ingested_at")
        read = ", ".join(c for c in dict.fromkeys(needed) if c in self.raw.column_names)
        return f"""with

changes as (

    select {read} from {self.raw.ref}{window}

),

truncations as (

    -- a TRUNCATE (op t) hides every version written before it
    select coalesce(max(lsn), -1) as truncated_before_lsn
    from changes
    where op = 't'

),

versions as (

    select
        changes.*,
        row_number() over (
            partition by {keys}
            order by lsn desc, tx_position desc, ingested_at desc
        ) as version_rank{known}
    from changes
    cross join truncations
    where changes.op != 't'
      and changes.lsn > truncations.truncated_before_lsn

),

final as (

    select
        {resolved},
        op,
        lsn,
        tx_id,
        tx_position,
        source_ts,
        ingested_at
    from versions
    where version_rank = 1

)

select * from final"""

    def staging_select(self) -> str:
        """The SELECT whose rows are ``staging.<table>`` (current state over the whole log)."""
        cols = ", ".join(self.columns + STAGING_META)
        return f"SELECT {cols} FROM (\n{self.current_sql()}\n) WHERE op != 'd'"

    def rebuild_sql(self) -> str:
        """Replace staging with the model over the whole log (one transaction)."""
        cols = ", ".join(self.columns + STAGING_META)
        return (
            "BEGIN TRANSACTION;\n"
            f"DELETE FROM {self.staging.ref} WHERE TRUE;\n"
            f"INSERT INTO {self.staging.ref} ({cols})\n"
            f"{self.staging_select()};\n"
            "COMMIT TRANSACTION;\n"
        )

    def merge_sql(self) -> str:
        """Apply the changes ingested since ``@since`` to staging (one transaction)."""
        on = " AND ".join(f"tgt.{k} = src.{k}" for k in self.key)
        sets = ", ".join(
            f"{c} = IF({self.toastable[c].format(c='src.' + c)}, tgt.{c}, src.{c})"
            if c in self.toastable
            else f"{c} = src.{c}"
            for c in self.columns + STAGING_META
            if c not in self.key
        )
        cols = self.columns + STAGING_META
        return (
            "BEGIN TRANSACTION;\n"
            # Staging is current state (small, one row per key): the DELETE and the MERGE must
            # find a key's row whatever partition it sits in; the change log is what is bounded.
            "-- sqlreview: allow MissingPartitionFilter because staging holds one row per key and "
            "a change can touch a row in any partition\n"
            # A TRUNCATE in the window removes what staging holds from before it.
            f"DELETE FROM {self.staging.ref} WHERE lsn < (\n"
            f"    SELECT COALESCE(MAX(lsn), -1) FROM {self.raw.ref}\n"
            "    WHERE ingested_at >= @since AND op = 't'\n"
            ");\n"
            "-- sqlreview: allow MissingPartitionFilter because the MERGE finds each changed key's "
            "row in any partition\n"
            f"MERGE INTO {self.staging.ref} AS tgt\n"
            f"USING (\n{self.current_sql('@since')}\n) AS src\n"
            f"ON {on}\n"
            "WHEN MATCHED AND src.lsn >= tgt.lsn AND src.op = 'd' THEN DELETE\n"
            f"WHEN MATCHED AND src.lsn >= tgt.lsn THEN UPDATE SET {sets}\n"
            "WHEN NOT MATCHED AND src.op != 'd' THEN\n"
            f"  INSERT ({', '.join(cols)})\n"
            f"  VALUES ({', '.join('src.' + c for c in cols)});\n"
            "COMMIT TRANSACTION;\n"
        )

    def drift_sql(self) -> str:
        """Rows of staging that differ from the full model (missing, extra or another lsn)."""
        on = " AND ".join(f"s.{k} = m.{k}" for k in self.key)
        return (
            f"SELECT COUNT(*) AS n FROM {self.staging.ref} AS s\n"
            f"FULL OUTER JOIN (\n{self.current_sql()}\n) AS m\n"
            f"ON {on} AND m.op != 'd'\n"
            "WHERE s.lsn IS DISTINCT FROM m.lsn AND (m.op IS NULL OR m.op != 'd')"
        )

    def checkpoint_sql(self) -> str:
        """Re-append the latest version of live keys whose newest copy is older than
        ``@checkpoint_before`` (so partition expiry never drops a live key's only version)."""
        raw_cols = list(self.raw.column_names)
        meta = {
            "op": "'r'",
            "snapshot": "TRUE",
            "ingested_at": "@now",
            "message_id": "CAST(NULL AS STRING)",
            "change_id": "CONCAT('checkpoint:', CAST(lsn AS STRING), ':', "
            + ", ':', ".join(f"CAST({k} AS STRING)" for k in self.key)
            + ")",
        }
        select = ", ".join(meta.get(c, c) for c in raw_cols)
        return (
            f"INSERT INTO {self.raw.ref} ({', '.join(raw_cols)})\n"
            f"SELECT {select} FROM (\n{self.current_sql()}\n)\n"
            "WHERE op != 'd' AND ingested_at < @checkpoint_before"
        )


def cdc_models(catalog: Catalog | None = None) -> dict[str, CdcModel]:
    """Every captured table, by staging name (``orders``), from the catalogue."""
    cat = catalog or load_catalog()
    out: dict[str, CdcModel] = {}
    for raw in cat.in_dataset("raw"):
        if raw.cdc_source:
            name = raw.name.removeprefix("cdc_")
            out[name] = CdcModel(raw, cat.table(f"staging.{name}"))
    return out


def model(table: str, catalog: Catalog | None = None) -> CdcModel:
    return cdc_models(catalog)[table]


def refresh_sql(table: str) -> str:
    """The full-rebuild script of ``staging.<table>``."""
    return model(table).rebuild_sql()


def captured_tables() -> tuple[str, ...]:
    """Staging table names of the captured source tables (``shop.orders`` -> ``orders``)."""
    return tuple(source.split(".", 1)[1] for source in get_settings().cdc_tables)


def _count(warehouse: Warehouse, ref: str) -> int:
    return int(warehouse.query(f"SELECT COUNT(*) AS n FROM {ref}").scalar() or 0)


def rebuild(
    warehouse: Warehouse,
    table: str,
    *,
    checkpoint_days: int | None = None,
    now: dt.datetime | None = None,
    catalog: Catalog | None = None,
) -> int:
    """Full rebuild of one staging table; returns the rows it changed (drift, logged).

    With ``checkpoint_days``, then re-appends the live keys whose newest copy is older.
    """
    m = model(table, catalog)
    empty = _count(warehouse, m.staging.ref) == 0  # first build: nothing to check
    drift = 0 if empty else int(warehouse.query(m.drift_sql()).scalar() or 0)
    if drift:
        log.warning("staging.%s: the full rebuild corrects %d rows", table, drift)
    now = now or dt.datetime.now(dt.UTC)
    warehouse.execute_script(m.rebuild_sql())
    if checkpoint_days is not None:
        warehouse.execute_script(
            m.checkpoint_sql(),
            {"now": now, "checkpoint_before": now - dt.timedelta(days=checkpoint_days)},
        )
    return drift


def refresh_incremental(warehouse: Warehouse, table: str, catalog: Catalog | None = None) -> int:
    """MERGE the changes ingested since staging's newest version; returns staging's row count.

    Falls back to a full rebuild when staging is empty.
    """
    m = model(table, catalog)
    newest = warehouse.query(f"SELECT MAX(ingested_at) AS newest FROM {m.staging.ref}").scalar()
    if newest is None:
        rebuild(warehouse, table, catalog=catalog)
    else:
        warehouse.execute_script(m.merge_sql(), {"since": newest - OVERLAP})
    return _count(warehouse, m.staging.ref)


def rebuild_due(now: dt.datetime, every_min: int) -> bool:
    """Whether the cdc_flush run started at ``now`` is the periodic full rebuild.

    Stateless (Cloud Scheduler calls once a minute): the run of every ``every_min``-th minute.

    Example:
        >>> rebuild_due(dt.datetime(2026, 1, 1, 0, 0, 30, tzinfo=dt.UTC), 1440)
        True
        >>> rebuild_due(dt.datetime(2026, 1, 1, 0, 1, tzinfo=dt.UTC), 1440)
        False
    """
    return int(now.timestamp() // 60) % every_min == 0


def refresh_staging(
    warehouse: Warehouse,
    tables: Iterable[str] | None = None,
    *,
    full: bool = True,
    checkpoint_days: int | None = None,
    catalog: Catalog | None = None,
) -> dict[str, int]:
    """Refresh the given staging tables (default: every captured one); row count of each.

    ``full=True`` rebuilds from the whole change log (and, with ``checkpoint_days``,
    re-appends old live versions); ``full=False`` merges what changed.
    """
    counts: dict[str, int] = {}
    for table in captured_tables() if tables is None else tables:
        ref = model(table, catalog).staging.ref
        if full:
            rebuild(warehouse, table, checkpoint_days=checkpoint_days, catalog=catalog)
            counts[ref] = _count(warehouse, ref)
        else:
            counts[ref] = refresh_incremental(warehouse, table, catalog)
    return counts
