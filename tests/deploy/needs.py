"""What each deployed Cloud Run function's code touches, derived from the code itself.

- Warehouse: the SQL a function can run, parsed with sqlglot (tables read and tables written),
  plus the tables its Python writes through the warehouse port (the flush's ``raw.cdc_*`` from the
  catalogue, the ETL's run records).
- Pub/Sub: the settings a function's modules read (found by walking their AST for attribute
  access to a :class:`~edp.settings.Settings` field), matched by name with the platform topology.
- Secrets: the settings Terraform fills from Secret Manager that the function's code reads.

The IAM test compares this with the grants in terraform/; it is derived, not declared, so a
function that starts writing a new dataset or reading a new secret fails the test until
Terraform grants it (and a grant no code uses fails it too).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import sqlglot
from sqlglot import exp

from edp.bus.topology import build_topology
from edp.cdc.staging import captured_tables, refresh_sql
from edp.contracts.catalog import load_catalog
from edp.etl.models import load_models
from edp.etl.runner import RUNS_TABLE
from edp.settings import Settings

from .boundary import imports_of

EDP = Path(__file__).resolve().parents[2] / "functions" / "edp"


@dataclass
class Needs:
    reads: set[str] = field(default_factory=set)  # datasets
    writes: set[str] = field(default_factory=set)
    publishes: set[str] = field(default_factory=set)  # topology topic keys
    pulls: set[str] = field(default_factory=set)  # topology subscription keys
    settings: set[str] = field(default_factory=set)  # Settings fields the code reads

    def read_only(self) -> set[str]:
        return self.reads - self.writes


def reachable(entry_module: str) -> set[Path]:
    """Files of every ``edp`` module the entry module imports, directly or not (lazy too)."""
    functions = EDP.parent
    seen: set[Path] = set()
    todo = [entry_module]
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for depth in range(1, len(parts) + 1):
            base = functions.joinpath(*parts[:depth])
            for path in (base.with_suffix(".py"), base / "__init__.py"):
                if path.is_file() and path not in seen:
                    seen.add(path)
                    todo += [m for m in imports_of(functions, path) if m.startswith("edp")]
    return seen


def settings_read(entry_module: str) -> set[str]:
    """Settings fields read as attributes by the code an entry module reaches."""
    fields = set(Settings.model_fields)
    found: set[str] = set()
    for path in reachable(entry_module):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in fields:
                found.add(node.attr)
    return found


def sql_access(script: str) -> tuple[set[str], set[str]]:
    """(tables read, tables written) by a BigQuery-dialect script, as ``dataset.table``."""
    reads: set[str] = set()
    writes: set[str] = set()
    for statement in sqlglot.parse(script, read="bigquery"):
        if statement is None:
            continue
        targets: set[str] = set()
        if isinstance(statement, exp.Insert | exp.Delete | exp.Update | exp.Merge):
            target = statement.this
            table = target if isinstance(target, exp.Table) else target.find(exp.Table)
            if table is not None and table.db:
                targets.add(f"{table.db}.{table.name}")
        writes |= targets
        reads |= {f"{t.db}.{t.name}" for t in statement.find_all(exp.Table) if t.db} - targets
    return reads, writes


def _topology_keys(settings_fields: set[str]) -> tuple[set[str], set[str]]:
    """Topic and subscription keys whose name (or name prefix) is a setting the code reads."""
    s = Settings(_env_file=None)
    topology = build_topology(s)
    values = {str(getattr(s, f)) for f in settings_fields}
    topics = {t.key for t in topology.topics if t.name in values}
    prefixes = {v + "." for v in values}
    subs = {
        sub.key
        for sub in topology.subscriptions
        if sub.name in values or any(sub.name.startswith(p) for p in prefixes)
    }
    return topics, subs


def _dataset(ref: str) -> str:
    return ref.split(".", 1)[0]


def function_needs() -> dict[str, Needs]:
    """Needs of every Cloud Run function in functions/main.py, by entry point name."""
    needs: dict[str, Needs] = {}

    ingest = Needs(settings=settings_read("edp.ingest.app"))
    ingest.publishes, _ = _topology_keys(ingest.settings & {"topic_events", "topic_bad_events"})
    needs["ingest"] = ingest

    flush = Needs(settings=settings_read("edp.cdc.app"))
    for table in load_catalog():
        if table.cdc_source:
            flush.writes.add(table.dataset)
    for table in captured_tables():
        reads, writes = sql_access(refresh_sql(table))
        flush.reads |= {_dataset(r) for r in reads}
        flush.writes |= {_dataset(w) for w in writes}
    publish_fields = flush.settings & {"cdc_dead_letter_topic"}
    pull_fields = flush.settings & {"cdc_subscription_prefix"}
    flush.publishes, _ = _topology_keys(publish_fields)
    _, flush.pulls = _topology_keys(pull_fields)
    needs["cdc_flush"] = flush

    etl = Needs(settings=settings_read("edp.etl.app"))
    for model in load_models().values():
        etl.reads |= {_dataset(r) for r in model.reads}
        etl.writes.add(model.layer)
    etl.writes.add(_dataset(RUNS_TABLE))
    needs["etl"] = etl

    # quality_check reads every table that declares checks (and the run records its freshness
    # check falls back on), and writes its results and incident state.
    from edp.quality.incidents import INCIDENTS_TABLE
    from edp.quality.store import RESULTS_TABLE

    quality = Needs(settings=settings_read("edp.quality.app"))
    quality.reads |= {t.dataset for t in load_catalog() if t.checks is not None}
    quality.reads.add(_dataset(RUNS_TABLE))
    quality.writes |= {_dataset(RESULTS_TABLE), _dataset(INCIDENTS_TABLE)}
    needs["quality_check"] = quality

    # sql_review dry-runs queries over any table of the catalogue (a dry run needs read access)
    # and writes nothing.
    review = Needs(settings=settings_read("edp.sqlreview.app"))
    review.reads |= {t.dataset for t in load_catalog()}
    needs["sql_review"] = review
    return needs
