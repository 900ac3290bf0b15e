"""The sections every pipeline page shares: tables, lineage, configuration, monitoring, failures.

Each function renders one section's Markdown from facts already read (catalogue, topology, code,
Terraform); :mod:`edp_tools.docs.pages` puts them together per pipeline.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, SecretStr

from edp.bus.topology import SubscriptionSpec, Topology, build_topology
from edp.contracts.catalog import Catalog, FieldSpec, TableSpec, load_catalog
from edp.lineage.columns import Edges, Field, Transformation
from edp.lineage.models import dataset_to_raw, model_lineage, sql_models, to_raw
from edp.settings import Settings
from edp_tools.docs.code import CodeFacts, Metric
from edp_tools.docs.infra import Alert, InfraFacts, read_infra
from edp_tools.docs.markdown import docstring_markdown, table

__all__ = ["Facts", "kind_label"]

_KIND_LABELS = {
    ("DIRECT", "IDENTITY"): "copy",
    ("DIRECT", "TRANSFORMATION"): "expression",
    ("DIRECT", "AGGREGATION"): "aggregate",
}


def kind_label(kind: Transformation) -> str:
    """A short reader's label of an OpenLineage transformation.

    Example:
        >>> kind_label(Transformation("INDIRECT", "WINDOW"))
        'indirect: window'
    """
    return _KIND_LABELS.get((kind.type, kind.subtype), f"indirect: {kind.subtype.lower()}")


@dataclass
class Facts:
    """Everything the pages are built from, read once per build."""

    root: Path

    @cached_property
    def catalog(self) -> Catalog:
        return load_catalog()

    @cached_property
    def settings(self) -> Settings:
        # defaults only: the pages must not depend on the environment they are built in
        return Settings.model_construct()

    @cached_property
    def topology(self) -> Topology:
        return build_topology(self.settings)

    @cached_property
    def infra(self) -> InfraFacts:
        return read_infra(self.root)

    @cached_property
    def dashboard_tiles(self) -> list[tuple[str, str]]:
        """(title, query text) of every tile of the dashboards in ``terraform/dashboards``."""
        tiles: list[tuple[str, str]] = []
        for path in sorted((self.root / "terraform" / "dashboards").glob("*.json")):
            layout = json.loads(path.read_text(encoding="utf-8")).get("mosaicLayout", {})
            for tile in layout.get("tiles", []):
                widget = tile.get("widget", {})
                tiles.append((str(widget.get("title", path.stem)), json.dumps(widget)))
        return tiles

    def tiles_for(self, metric: str) -> list[str]:
        """Titles of the dashboard tiles whose queries read ``metric``."""
        pattern = re.compile(rf"\b{re.escape(metric)}(?:_bucket|_count|_sum)?\b")
        return [title for title, text in self.dashboard_tiles if pattern.search(text)]

    def tables(self, patterns: Iterable[str]) -> list[TableSpec]:
        """Catalogue tables matching ``dataset.table`` names or ``dataset.prefix*`` patterns."""
        chosen: list[TableSpec] = []
        for pattern in patterns:
            for spec in self.catalog:
                matches = (
                    spec.ref.startswith(pattern[:-1])
                    if pattern.endswith("*")
                    else spec.ref == pattern
                )
                if matches and spec not in chosen:
                    chosen.append(spec)
        return chosen

    def subscriptions(self, keys: Iterable[str]) -> list[SubscriptionSpec]:
        chosen: list[SubscriptionSpec] = []
        for key in keys:
            for sub in self.topology.subscriptions:
                hit = sub.key.startswith(key[:-1]) if key.endswith("*") else sub.key == key
                if hit and sub not in chosen:
                    chosen.append(sub)
        return chosen


# --- tables -------------------------------------------------------------------------------------


def _storage(spec: TableSpec) -> str:
    parts = []
    if spec.partitioning:
        p = spec.partitioning
        parts.append(f"partitioned by {p.type} on `{p.field}`")
        if p.expiration_days:
            parts.append(f"partitions expire after {p.expiration_days} days")
        if p.require_partition_filter:
            parts.append("queries must filter on the partition column")
    else:
        parts.append("not partitioned")
    if spec.clustering:
        parts.append("clustered by " + ", ".join(f"`{c}`" for c in spec.clustering))
    if spec.primary_key:
        parts.append("key " + ", ".join(f"`{c}`" for c in spec.primary_key))
    return "; ".join(parts)


def _field_rows(fields: Sequence[FieldSpec], prefix: str = "") -> list[list[str]]:
    rows: list[list[str]] = []
    for spec in fields:
        rows.append([f"`{prefix}{spec.name}`", spec.type, spec.mode, spec.description])
        rows += _field_rows(spec.fields, f"{prefix}{spec.name}.")
    return rows


def table_section(title: str, specs: Sequence[TableSpec], with_schema: bool = True) -> str:
    """A list of tables with their description, storage and (optionally) schema."""
    if not specs:
        return f"**{title}:** none.\n"
    if len(specs) > 4 and not with_schema:  # a whole layer: one line per table
        rows = [[f"`{spec.ref}`", _storage(spec)] for spec in specs]
        return f"### {title}\n\n" + table(["table", "storage"], rows) + "\n"
    out = [f"### {title}\n"]
    for spec in specs:
        out.append(f"#### `{spec.ref}`\n\n{spec.description.strip()}\n\n{_storage(spec)}.\n")
        if with_schema:
            out.append(table(["column", "type", "mode", "description"], _field_rows(spec.fields)))
            out.append("")
    return "\n".join(out)


# --- lineage ------------------------------------------------------------------------------------


def _edges_cell(edges: Edges) -> str:
    if not edges:
        return "— (no column: a constant or `COUNT(*)`)"
    return "<br>".join(
        f"`{source.table}.{source.field}` ({', '.join(kind_label(k) for k in sorted(kinds))})"
        for source, kinds in edges.items()
    )


def _indirect_rows(dataset: dict[Field, frozenset[str]]) -> list[list[str]]:
    return [
        [f"`{source.table}.{source.field}`", ", ".join(s.lower() for s in sorted(subtypes))]
        for source, subtypes in dataset.items()
    ]


def lineage_section(ref: str) -> str:
    """Column-level lineage of the SQL model writing ``ref``: per column, its inputs through
    CTEs (with the kind), its origin in tables no model writes, and the columns that only pick
    rows (indirect)."""
    model = sql_models()[ref]
    lineage = model_lineage(ref)
    rows = [
        [f"`{column}`", _edges_cell(edges), _edges_cell(to_raw(ref, column))]
        for column, edges in lineage.columns.items()
    ]
    inputs = ", ".join(f"`{t}`" for t in sorted(lineage.tables - {ref})) or "—"
    return "\n".join(
        [
            f"### `{ref}` ({model.path.name})\n",
            f"Reads {inputs}. Kinds: copy (the value as is), expression (computed from it), "
            "aggregate (an aggregate or window aggregate on the way), indirect: window (the "
            "column partitions or orders the window that computes it), indirect: join (the "
            "value is picked by a join on this column). STRUCT fields and UNNEST elements are "
            "traced to the field (`items.price`).\n",
            table(
                ["column", "from (this model's inputs)", "origin (tables no model writes)"], rows
            ),
            "",
            "Columns that only filter, join, group or sort the rows (indirect, whole table), in "
            "this model:\n",
            table(["input column", "used to"], _indirect_rows(lineage.dataset)),
            "",
            "... and followed through every upstream model to its origin:\n",
            table(["origin column", "used to"], _indirect_rows(dataset_to_raw(ref))),
            "",
        ]
    )


# --- configuration ------------------------------------------------------------------------------


def _env_name(name: str) -> str:
    alias = Settings.model_fields[name].validation_alias
    if isinstance(alias, AliasChoices):
        return " / ".join(f"`{choice}`" for choice in alias.choices)
    return f"`EDP_{name.upper()}`"


def _default(name: str) -> str:
    value: Any = getattr(Settings.model_construct(), name)
    if value is None or (isinstance(value, list) and not value):
        return "—"
    if isinstance(value, list):
        if value and isinstance(value[0], SecretStr):
            return "—"
        return "`" + ",".join(str(v) for v in value) + "`"
    return f"`{value}`"


def configuration_section(settings: Iterable[str]) -> str:
    """Every setting the code reads: env var, default, description (settings model order)."""
    chosen = set(settings)
    rows = [
        [_env_name(name), _default(name), field.description or ""]
        for name, field in Settings.model_fields.items()
        if name in chosen
    ]
    if not rows:
        return "It reads no platform setting.\n"
    return (
        "Every setting its code (and the project modules it imports) reads, from "
        "`edp.settings.Settings`:\n\n" + table(["variable", "default", "description"], rows) + "\n"
    )


# --- monitoring ---------------------------------------------------------------------------------


def metrics_table(metrics: Sequence[Metric], facts: Facts) -> str:
    if not metrics:
        return "Its code emits no metric.\n"
    rows = [
        [f"`{m.name}`", m.kind, m.description, ", ".join(facts.tiles_for(m.name)) or "—"]
        for m in metrics
    ]
    return table(["metric", "kind", "description", "dashboard tiles"], rows) + "\n"


def alerts_for(
    alerts: Sequence[Alert], metrics: Iterable[str], function: str | None
) -> list[Alert]:
    """The alert policies whose query reads one of ``metrics`` or the function's service."""
    names = set(metrics)
    chosen = []
    for alert in alerts:
        uses_metric = any(name in alert.query for name in names)
        uses_function = function is not None and f'module.function["{function}"]' in alert.query
        if uses_metric or uses_function:
            chosen.append(alert)
    return chosen


def alerts_table(alerts: Sequence[Alert]) -> str:
    if not alerts:
        return "No alert policy in `terraform/09-monitoring.tf` watches it.\n"
    rows = [[f"`{a.key}`", a.severity, a.duration, a.doc] for a in alerts]
    return table(["alert policy", "severity", "for", "fires when / what to do"], rows) + "\n"


# --- troubleshooting ----------------------------------------------------------------------------


def errors_table(code: CodeFacts) -> str:
    if not code.errors:
        return "Its code raises no exception of its own.\n"
    rows = [
        [
            f"`{e.name}`",
            docstring_markdown(e.doc) or "(built-in)",
            ", ".join(f"`{m}`" for m in e.modules),
        ]
        for e in code.errors
    ]
    return table(["error", "meaning", "raised in"], rows) + "\n"


def delivery_table(subscriptions: Sequence[SubscriptionSpec], topology: Topology) -> str:
    if not subscriptions:
        return ""
    rows = []
    for sub in subscriptions:
        dead = (
            f"`{topology.topic_name(sub.dead_letter.topic)}` after "
            f"{sub.dead_letter.max_delivery_attempts} deliveries"
            if sub.dead_letter
            else "—"
        )
        retry = (
            f"{sub.retry.minimum_backoff_s} s -> {sub.retry.maximum_backoff_s} s backoff"
            if sub.retry
            else "immediate"
        )
        rows.append([f"`{sub.name}`", f"{sub.ack_deadline_s} s", retry, dead])
    return (
        table(["subscription", "ack deadline", "redelivery", "dead letter"], rows)
        + "\n\nA dead-lettered message is kept on `<dead-letter topic>-archive` for inspection "
        "and replay.\n"
    )
