"""Compile ``schemas/`` into every derived artefact, or check that none has drifted.

``schemas/`` is the single source of truth. From it this module derives, deterministically:

==============================================================  ==============================
artefact                                                        from
==============================================================  ==============================
``functions/edp/contracts/generated/catalog.json``              ``schemas/tables/*/*.yaml``
``functions/edp/contracts/generated/event_models.py``           ``schemas/events/event.schema.json``
``functions/edp/contracts/generated/event.schema.json``         the same (packaged copy)
``schemas/bigquery/<dataset>/<table>.json``                     table YAML (Terraform reads it)
``schemas/duckdb/<dataset>.sql``                                table YAML (DuckDB DDL snapshot)
``schemas/CATALOG.md``                                          table YAML + datasets.yaml (docs)
==============================================================  ==============================

``build`` writes them; ``check`` regenerates them in memory and lists every file that differs,
is missing, or is stale (left over in a generated folder), and fails if there is any. The
table YAMLs are validated on the way (see :func:`catalog_problems`).

Run it as ``edp schemas build|check`` or ``python -m edp_tools.contracts.build [--check]``.

Example:
    >>> drifts = check(repo_root())
    >>> drifts
    []
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edp.contracts.bigquery import bigquery_schema_json
from edp.contracts.catalog import DATASETS, Catalog, FieldSpec, TableSpec
from edp.errors import ContractError
from edp_tools.contracts.cdc_declaration import cdc_artefacts, cdc_problems
from edp_tools.contracts.codegen import generate_models
from edp_tools.contracts.duckdb_ddl import duckdb_create_table_sql, duckdb_type

GENERATED_PACKAGE_DIR = Path("functions/edp/contracts/generated")
CATALOG_JSON = GENERATED_PACKAGE_DIR / "catalog.json"
EVENT_MODELS = GENERATED_PACKAGE_DIR / "event_models.py"
PACKAGED_EVENT_SCHEMA = GENERATED_PACKAGE_DIR / "event.schema.json"
EVENT_SCHEMA = Path("schemas/events/event.schema.json")
TABLES_DIR = Path("schemas/tables")
DATASETS_YAML = Path("schemas/datasets.yaml")
BIGQUERY_DIR = Path("schemas/bigquery")
DUCKDB_DIR = Path("schemas/duckdb")
CATALOG_DOC = Path("schemas/CATALOG.md")
PROMOTIONS_YAML = Path("schemas/calendar/promotions.yaml")
PACKAGED_PROMOTIONS = GENERATED_PACKAGE_DIR / "promotions.json"
# Folders whose every file is generated: a file there that build does not produce is stale.
GENERATED_DIRS = (BIGQUERY_DIR, DUCKDB_DIR)

MAX_CLUSTERING_FIELDS = 4
PARTITION_TYPES = frozenset({"TIMESTAMP", "DATE", "DATETIME"})
CLUSTER_TYPES = frozenset(
    {"STRING", "INT64", "NUMERIC", "BIGNUMERIC", "DATE", "DATETIME", "TIMESTAMP", "BOOL"}
)


def repo_root() -> Path:
    """The source checkout this package is installed from (editable install)."""
    root = Path(__file__).resolve().parents[3]
    if not (root / "schemas").is_dir():
        raise ContractError(f"no schemas/ folder under {root}: run from a source checkout")
    return root


# -- reading the sources ---------------------------------------------------------------------


class DatasetSpec(BaseModel):
    """One dataset's metadata in ``schemas/datasets.yaml``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    description: str = Field(min_length=1)
    default_partition_expiration_days: int | None = Field(None, gt=0)
    default_table_expiration_days: int | None = Field(None, gt=0)
    labels: dict[str, str] = Field(default_factory=dict)


class DatasetsFile(BaseModel):
    """The whole ``schemas/datasets.yaml``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    datasets: dict[str, DatasetSpec]


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ContractError(f"{path}: invalid YAML: {exc}") from exc


def load_datasets(root: Path) -> DatasetsFile:
    """Parse and validate ``schemas/datasets.yaml``; every dataset must be described."""
    path = root / DATASETS_YAML
    try:
        datasets = DatasetsFile.model_validate(_read_yaml(path))
    except ValidationError as exc:
        raise ContractError(f"{path}: {exc}") from exc
    missing = sorted(set(DATASETS) - set(datasets.datasets))
    unknown = sorted(set(datasets.datasets) - set(DATASETS))
    if missing or unknown:
        raise ContractError(f"{path}: datasets not described {missing}, unknown {unknown}")
    return datasets


def load_tables(root: Path) -> Catalog:
    """Parse every ``schemas/tables/<dataset>/<table>.yaml`` into a catalogue (sorted by ref).

    Raises:
        ContractError: a file is not valid YAML, does not match the table format, or lives in
            an unknown dataset folder; the message names the file.
    """
    tables: list[TableSpec] = []
    for path in sorted((root / TABLES_DIR).glob("*/*")):
        if path.suffix != ".yaml":
            raise ContractError(f"{path}: table files must be <dataset>/<table>.yaml")
        dataset = path.parent.name
        if dataset not in DATASETS:
            raise ContractError(f"{path}: unknown dataset {dataset!r} (one of {DATASETS})")
        data = _read_yaml(path)
        if not isinstance(data, dict):
            raise ContractError(f"{path}: expected a mapping at the top level")
        if "dataset" in data or "name" in data:
            raise ContractError(f"{path}: dataset and name come from the path, remove them")
        try:
            tables.append(TableSpec.model_validate({"dataset": dataset, "name": path.stem, **data}))
        except ValidationError as exc:
            raise ContractError(f"{path}: {exc}") from exc
    order = {name: i for i, name in enumerate(DATASETS)}
    tables.sort(key=lambda t: (order[t.dataset], t.name))
    return Catalog(tables=tuple(tables))


# -- validating the catalogue ----------------------------------------------------------------


def _field_problems(where: str, fields: Sequence[FieldSpec]) -> list[str]:
    problems = []
    seen: set[str] = set()
    for field in fields:
        path = f"{where}.{field.name}"
        if field.name.lower() in seen:
            problems.append(f"{path}: duplicate field name (BigQuery names are case-insensitive)")
        seen.add(field.name.lower())
        if not field.description.strip():
            problems.append(f"{path}: empty description")
        if field.type == "RECORD" and not field.fields:
            problems.append(f"{path}: RECORD without fields")
        if field.type != "RECORD" and field.fields:
            problems.append(f"{path}: only RECORD fields have sub-fields")
        decimal = field.type in ("NUMERIC", "BIGNUMERIC")
        if not decimal and (field.precision is not None or field.scale is not None):
            problems.append(f"{path}: precision/scale only apply to NUMERIC/BIGNUMERIC")
        if decimal and field.precision is not None:
            # BigQuery: NUMERIC(P, S) with S <= 9 and S <= P <= S + 29; BIGNUMERIC S <= 38, +38.
            max_scale, max_int = (9, 29) if field.type == "NUMERIC" else (38, 38)
            scale = field.scale or 0
            if not (
                0 <= scale <= max_scale and max(1, scale) <= field.precision <= scale + max_int
            ):
                problems.append(f"{path}: {field.type}({field.precision}, {scale}) out of range")
        problems.extend(_field_problems(path, field.fields))
    return problems


def _partition_problems(table: TableSpec, columns: Mapping[str, FieldSpec]) -> list[str]:
    part = table.partitioning
    if part is None:
        return []
    problems = []
    pfield = columns.get(part.field)
    if pfield is None:
        problems.append(f"{table.ref}: partition field {part.field!r} is not a column")
    elif pfield.type not in PARTITION_TYPES or pfield.mode == "REPEATED":
        problems.append(
            f"{table.ref}: partition field {part.field!r} must be a single "
            f"TIMESTAMP/DATE/DATETIME, not {pfield.mode} {pfield.type}"
        )
    elif pfield.type == "DATE" and part.type == "HOUR":
        problems.append(f"{table.ref}: a DATE column cannot be HOUR-partitioned")
    if part.expiration_days is not None and part.expiration_days <= 0:
        problems.append(f"{table.ref}: partition expiration must be positive")
    return problems


def _clustering_problems(table: TableSpec, columns: Mapping[str, FieldSpec]) -> list[str]:
    problems = []
    if len(table.clustering) > MAX_CLUSTERING_FIELDS:
        problems.append(f"{table.ref}: at most {MAX_CLUSTERING_FIELDS} clustering fields")
    if len(set(table.clustering)) != len(table.clustering):
        problems.append(f"{table.ref}: clustering repeats a field")
    for name in table.clustering:
        cfield = columns.get(name)
        if cfield is None:
            problems.append(f"{table.ref}: clustering field {name!r} is not a column")
        elif cfield.type not in CLUSTER_TYPES or cfield.mode == "REPEATED":
            problems.append(
                f"{table.ref}: clustering field {name!r} cannot be {cfield.mode} {cfield.type}"
            )
    return problems


def _key_and_label_problems(table: TableSpec, columns: Mapping[str, FieldSpec]) -> list[str]:
    problems = []
    for name in table.primary_key:
        kfield = columns.get(name)
        if kfield is None:
            problems.append(f"{table.ref}: primary key column {name!r} is not a column")
        elif kfield.mode == "REPEATED" or kfield.type in ("RECORD", "JSON"):
            problems.append(f"{table.ref}: primary key column {name!r} is not a scalar")
    for key, value in table.labels.items():
        if not _valid_label(key, key=True) or not _valid_label(value, key=False):
            problems.append(f"{table.ref}: invalid label {key}={value}")
    return problems


def catalog_problems(catalog: Catalog) -> list[str]:
    """Everything wrong with a catalogue, one message per problem (empty = valid).

    Checks: unique table refs; unique field names; non-empty descriptions everywhere; the
    partition field is a top-level, non-repeated TIMESTAMP/DATE/DATETIME; at most four
    clustering fields, each a top-level non-repeated column of a clusterable type; primary-key
    columns exist and are scalars; labels follow BigQuery's rules; every DuckDB type maps.
    """
    problems: list[str] = []
    refs = [t.ref for t in catalog.tables]
    problems.extend(f"{r}: defined twice" for r in sorted({r for r in refs if refs.count(r) > 1}))
    for table in catalog.tables:
        columns = {f.name: f for f in table.fields}
        if not table.description.strip():
            problems.append(f"{table.ref}: empty table description")
        if not table.fields:
            problems.append(f"{table.ref}: no fields")
        problems.extend(_field_problems(table.ref, table.fields))
        problems.extend(_partition_problems(table, columns))
        problems.extend(_clustering_problems(table, columns))
        problems.extend(_key_and_label_problems(table, columns))
        problems.extend(_check_problems(table, columns, set(refs)))
        for field in table.fields:
            try:
                duckdb_type(field)
            except (ContractError, KeyError) as exc:
                problems.append(f"{table.ref}.{field.name}: no DuckDB type ({exc})")
    problems.extend(cdc_problems(catalog))
    return problems


def _check_problems(
    table: TableSpec, columns: Mapping[str, FieldSpec], refs: set[str]
) -> list[str]:
    """Every column a table's ``checks:`` names exists (and other tables it names)."""
    checks = table.checks
    if checks is None:
        return []
    named: list[tuple[str, str | None]] = [
        ("time_column", checks.time_column),
        ("freshness.column", checks.freshness.column if checks.freshness else None),
        ("volume.column", checks.volume.column if checks.volume else None),
    ]
    named += [("nulls.columns", c) for c in (checks.nulls.columns if checks.nulls else ())]
    mix = checks.category_mix.columns if checks.category_mix else ()
    named += [("category_mix.columns", c) for c in mix]
    if checks.category_mix:
        named.append(("category_mix.cluster_column", checks.category_mix.cluster_column))
    named += [("references.column", r.column) for r in checks.references]
    problems = [
        f"{table.ref}: checks.{what} {name!r} is not a column"
        for what, name in named
        if name is not None and name not in columns
    ]
    if checks.duplicates and not table.primary_key:
        problems.append(f"{table.ref}: checks.duplicates needs a primary_key")
    if (checks.nulls or checks.duplicates or checks.category_mix) and not checks.time_column:
        problems.append(f"{table.ref}: window checks need checks.time_column")
    others = [r.table for r in checks.references]
    if checks.refused_share:
        others.append(checks.refused_share.accepted_table)
    problems += [f"{table.ref}: checks name unknown table {o!r}" for o in others if o not in refs]
    return problems


def _valid_label(text: str, *, key: bool) -> bool:
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789_-")
    if len(text) > 63 or not set(text) <= allowed:
        return False
    return not key or (bool(text) and text[0].isalpha())


# -- producing the artefacts -----------------------------------------------------------------


def _json_text(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _catalog_json(catalog: Catalog) -> str:
    return _json_text(catalog.model_dump(mode="json"))


def _duckdb_snapshot(dataset: str, tables: Iterable[TableSpec]) -> str:
    header = (
        f"-- DuckDB DDL of the {dataset} dataset. GENERATED by `edp schemas build` from\n"
        f"-- schemas/tables/{dataset}/*.yaml: do not edit. The local warehouse runs the same\n"
        "-- statements (edp_tools.contracts.duckdb_ddl) with the configured schema name.\n"
    )
    body = "\n\n".join(duckdb_create_table_sql(t, dataset) for t in tables)
    return f'{header}\nCREATE SCHEMA IF NOT EXISTS "{dataset}";\n\n{body}\n'


def _md_cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _doc_fields(fields: Sequence[FieldSpec], prefix: str = "") -> list[str]:
    rows = []
    for f in fields:
        kind: str = f.type
        if f.precision is not None:
            kind += f"({f.precision}, {f.scale or 0})"
        rows.append(f"| `{prefix}{f.name}` | {kind} | {f.mode} | {_md_cell(f.description)} |")
        rows.extend(_doc_fields(f.fields, prefix=f"{prefix}{f.name}."))
    return rows


def _catalog_doc(catalog: Catalog, datasets: DatasetsFile) -> str:
    lines = [
        "# Table catalogue",
        "",
        "GENERATED by `edp schemas build` from `schemas/tables/` and `schemas/datasets.yaml`:",
        "do not edit. How to add or change a table: `schemas/README.md`.",
        "",
    ]
    for dataset in DATASETS:
        spec = datasets.datasets[dataset]
        lines += [f"## {dataset}", "", _md_cell(spec.description), ""]
        for table in catalog.in_dataset(dataset):
            lines += [f"### `{table.ref}`", "", _md_cell(table.description), ""]
            meta = []
            if table.partitioning is not None:
                p = table.partitioning
                text = f"partitioned by {p.type} on `{p.field}`"
                if p.expiration_days is not None:
                    text += f", partitions expire after {p.expiration_days} days"
                if p.require_partition_filter:
                    text += ", queries must filter on the partition column"
                meta.append(text)
            if table.clustering:
                meta.append("clustered by " + ", ".join(f"`{c}`" for c in table.clustering))
            if table.primary_key:
                meta.append("key " + ", ".join(f"`{c}`" for c in table.primary_key))
            if meta:
                lines += ["- " + m for m in meta] + [""]
            lines += ["| column | type | mode | description |", "| --- | --- | --- | --- |"]
            lines += [*_doc_fields(table.fields), ""]
    return "\n".join(lines)


def _promotions_json(root: Path) -> str:
    """The promotions calendar, validated, as the packaged JSON the quality agent reads."""
    from edp.quality.calendar import PromotionCalendar

    path = root / PROMOTIONS_YAML
    try:
        calendar = PromotionCalendar.model_validate(_read_yaml(path))
    except ValidationError as exc:
        raise ContractError(f"{path}: {exc}") from exc
    return calendar.model_dump_json(indent=2) + "\n"


@dataclass(frozen=True)
class Artefact:
    """One derived file: its path relative to the repository root and its exact text."""

    path: Path
    text: str


def build_artefacts(root: Path) -> list[Artefact]:
    """Every derived artefact, computed from ``root/schemas`` without touching the disk.

    Raises:
        ContractError: a source file is invalid, or the catalogue has problems (all listed).
    """
    catalog = load_tables(root)
    problems = catalog_problems(catalog)
    if problems:
        raise ContractError("invalid table catalogue:\n  " + "\n  ".join(problems))
    datasets = load_datasets(root)
    schema_text = (root / EVENT_SCHEMA).read_text(encoding="utf-8")
    try:
        schema = json.loads(schema_text)
    except json.JSONDecodeError as exc:
        raise ContractError(f"{EVENT_SCHEMA}: invalid JSON: {exc}") from exc
    artefacts = [
        *(Artefact(path, text) for path, text in cdc_artefacts(root, catalog)),
        Artefact(CATALOG_JSON, _catalog_json(catalog)),
        Artefact(EVENT_MODELS, generate_models(schema)),
        Artefact(PACKAGED_EVENT_SCHEMA, schema_text),
        Artefact(CATALOG_DOC, _catalog_doc(catalog, datasets)),
        Artefact(PACKAGED_PROMOTIONS, _promotions_json(root)),
    ]
    for table in catalog.tables:
        path = BIGQUERY_DIR / table.dataset / f"{table.name}.json"
        artefacts.append(Artefact(path, bigquery_schema_json(table)))
    for dataset in DATASETS:
        tables = catalog.in_dataset(dataset)
        if tables:
            artefacts.append(
                Artefact(DUCKDB_DIR / f"{dataset}.sql", _duckdb_snapshot(dataset, tables))
            )
    return artefacts


@dataclass(frozen=True)
class Drift:
    """A derived file that does not match what build produces now."""

    path: Path
    kind: Literal["changed", "missing", "stale"]

    def __str__(self) -> str:
        return f"{self.kind}: {self.path.as_posix()}"


def _generated_files(root: Path) -> set[Path]:
    found: set[Path] = set()
    for folder in GENERATED_DIRS:
        if (root / folder).is_dir():
            found |= {p.relative_to(root) for p in (root / folder).rglob("*") if p.is_file()}
    return found


def diff_artefacts(root: Path, artefacts: Sequence[Artefact]) -> list[Drift]:
    """Compare ``artefacts`` with the files under ``root`` (sorted by path)."""
    drifts = []
    for artefact in artefacts:
        target = root / artefact.path
        if not target.is_file():
            drifts.append(Drift(artefact.path, "missing"))
        elif target.read_text(encoding="utf-8") != artefact.text:
            drifts.append(Drift(artefact.path, "changed"))
    expected = {a.path for a in artefacts}
    drifts += [Drift(p, "stale") for p in _generated_files(root) - expected]
    return sorted(drifts, key=lambda d: d.path.as_posix())


def check(root: Path) -> list[Drift]:
    """Every derived file that drifted from ``schemas/`` under ``root`` (empty = in sync)."""
    return diff_artefacts(root, build_artefacts(root))


def build(root: Path) -> list[Drift]:
    """Write every artefact that changed and delete stale ones; returns what it changed."""
    artefacts = build_artefacts(root)
    drifts = diff_artefacts(root, artefacts)
    texts: Mapping[Path, str] = {a.path: a.text for a in artefacts}
    for drift in drifts:
        target = root / drift.path
        if drift.kind == "stale":
            target.unlink()
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(texts[drift.path], encoding="utf-8")
    return drifts


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m edp_tools.contracts.build [--check] [--root DIR]``; exit 1 on drift or error."""
    parser = argparse.ArgumentParser(
        prog="python -m edp_tools.contracts.build", description=__doc__
    )
    parser.add_argument("--check", action="store_true", help="fail if anything drifted")
    parser.add_argument("--root", type=Path, default=None, help="repository root")
    args = parser.parse_args(argv)
    try:
        root = args.root or repo_root()
        drifts = check(root) if args.check else build(root)
    except ContractError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for drift in drifts:
        print(drift, file=sys.stderr if args.check else sys.stdout)
    if args.check and drifts:
        print(
            f"{len(drifts)} derived file(s) drifted from schemas/: run `edp schemas build`",
            file=sys.stderr,
        )
        return 1
    if not drifts:
        print("schemas: all derived artefacts up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
