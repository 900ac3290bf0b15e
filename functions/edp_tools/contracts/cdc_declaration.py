"""A captured (CDC) table is declared once, in ``schemas/tables``; this checks the declaration and
derives the two source-side lists that must name it.

The declaration: ``raw/cdc_<t>.yaml`` with ``cdc_source: <schema>.<t>`` (source columns + the
change metadata cdc_flush writes) and ``staging/<t>.yaml`` (``primary_key``, the same source
columns + ``lsn``, ``source_ts``, ``ingested_at``). From it follow the settings' captured tables
(hence the Pub/Sub topics and flush subscriptions, locally and in Terraform), the flush into raw
and the staging SQL (:mod:`edp.cdc.staging`); ``edp schemas build`` also rewrites Debezium's
``table.include.list`` (gke/) and the publication's table list (schemas/cdc/publication.sql).

Example:
    >>> include_list_line(["shop.orders"])
    'debezium.source.table.include.list=shop.orders,shop.debezium_heartbeat'
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from edp.cdc.topology import HEARTBEAT_TABLE, SOURCE_SCHEMA
from edp.contracts.catalog import Catalog

DEBEZIUM_PROPERTIES = Path("gke/base/debezium/application.properties")
PUBLICATION_SQL = Path("schemas/cdc/publication.sql")
_INCLUDE = re.compile(r"^debezium\.source\.table\.include\.list=.*$", re.M)
_FOR_TABLE = re.compile(r"FOR TABLE .*?(?=\n\s*WITH)", re.S)

#: Columns cdc_flush writes to every raw.cdc_<table> besides the source columns.
CDC_RAW_META = (
    "op", "lsn", "tx_id", "tx_position", "snapshot", "source_ts", "change_id", "message_id",
    "ingested_at",
)  # fmt: skip
#: Columns every CDC staging table carries besides the source columns.
CDC_STAGING_META = ("lsn", "source_ts", "ingested_at")


def cdc_problems(catalog: Catalog) -> list[str]:
    """A captured table is declared by ``raw/cdc_<t>.yaml`` (``cdc_source``, source columns +
    the change metadata) and ``staging/<t>.yaml`` (primary key, the same source columns + lsn,
    source_ts, ingested_at); everything else (topics, subscriptions, flush, staging SQL) is
    derived from those two. One message per inconsistency."""
    problems: list[str] = []
    refs = {t.ref for t in catalog.tables}
    for raw in catalog.in_dataset("raw"):
        if not raw.cdc_source:
            continue
        name = raw.name.removeprefix("cdc_")
        if raw.name == name:
            problems.append(f"{raw.ref}: a table with cdc_source must be named raw.cdc_<table>")
            continue
        if f"staging.{name}" not in refs:
            problems.append(f"{raw.ref}: no staging.{name} (the current state) is declared")
            continue
        staging = catalog.table(f"staging.{name}")
        if not staging.primary_key:
            problems.append(f"{staging.ref}: a CDC staging table needs its primary_key")
        missing = [c for c in CDC_RAW_META if c not in raw.column_names]
        if missing:
            problems.append(f"{raw.ref}: missing CDC columns {missing}")
        missing = [c for c in CDC_STAGING_META if c not in staging.column_names]
        if missing:
            problems.append(f"{staging.ref}: missing CDC columns {missing}")
        source = [c for c in staging.column_names if c not in CDC_STAGING_META]
        absent = [c for c in source if c not in raw.column_names]
        if absent:
            problems.append(f"{staging.ref}: columns {absent} are not in {raw.ref}")
        for column in source:
            if column not in raw.column_names:
                continue
            a, b = raw.column(column), staging.column(column)
            if (a.type, a.mode == "REPEATED") != (b.type, b.mode == "REPEATED"):
                problems.append(f"{staging.ref}.{column}: type differs from {raw.ref}")
    return problems


def _sources(catalog: Catalog) -> list[str]:
    return [*catalog.cdc_sources(), f"{SOURCE_SCHEMA}.{HEARTBEAT_TABLE}"]


def include_list_line(sources: Sequence[str]) -> str:
    """Debezium's include list: the declared tables and its heartbeat table."""
    return "debezium.source.table.include.list=" + ",".join(
        [*sources, f"{SOURCE_SCHEMA}.{HEARTBEAT_TABLE}"]
    )


def _for_table(sources: Sequence[str]) -> str:
    """``FOR TABLE a, b, ...`` wrapped at 100 columns, continuation under the first table."""
    indent = " " * len("    FOR TABLE ")
    lines = ["FOR TABLE"]
    for i, name in enumerate(sources):
        item = name + ("," if i < len(sources) - 1 else "")
        if len(lines[-1]) + 1 + len(item) > 100 - 4:
            lines.append(indent + item)
        else:
            lines[-1] += " " + item
    return "\n".join(lines)


def cdc_artefacts(root: Path, catalog: Catalog) -> list[tuple[Path, str]]:
    """The Debezium properties and the publication with the declared tables' lists (for each
    of the two files present under ``root``)."""
    rewrites = {
        DEBEZIUM_PROPERTIES: (_INCLUDE, include_list_line(list(catalog.cdc_sources()))),
        PUBLICATION_SQL: (_FOR_TABLE, _for_table(_sources(catalog))),
    }
    out: list[tuple[Path, str]] = []
    for path, (pattern, replacement) in rewrites.items():
        if (root / path).is_file():
            text = (root / path).read_text(encoding="utf-8")
            # A literal replacement (re.sub would read backslashes in it as escapes).
            out.append((path, pattern.sub(replacement.replace("\\", "\\\\"), text)))
    return out
