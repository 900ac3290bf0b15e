"""SQL models of the daily ETL: discovery, configuration and the dependency graph.

A model is one ``.sql`` file, ``models/<layer>/<entity>.sql``, written in BigQuery dialect with
logical table names and named parameters. It is a single SELECT shaped like dbt's jaffle-shop
(import CTEs -> typed/renamed -> named steps -> ``select * from final``) that returns exactly
the rows of the partitions the run owns; the runner wraps it into the write. Its target table is
``<layer>.<entity>`` in the catalogue, and one comment line configures the write::

    -- config: {partition_by: report_date, strategy: insert_overwrite}

``strategy`` is ``insert_overwrite`` (delete the owned partitions, insert the SELECT; needs
``partition_by``) or ``merge`` (MERGE on ``unique_key``: update matched rows, insert new ones).
``window: week`` widens the run's first day to the Monday of its week (models with weekly rows).

Data-quality assertions live beside the model they check (bigquery-etl's ``checks.sql``):
``models/<layer>/<entity>.checks.sql`` holds named queries, each after a ``-- check: <name>``
line, that return the violating rows of the partitions the run wrote (no row = pass). The
runner runs them after every write; a failing check fails (and records) the run.

Dependencies are read from the SQL itself: every table a model reads that is also a model is an
upstream. Parameters every model may use: ``@start``, ``@end`` (DATE: the owned window),
``@tz`` (reporting time zone) and the ETL knobs of :class:`edp.settings.Settings`.

Example:
    >>> models = load_models()
    >>> [m.ref for m in plan(models, "staging")]
    ['staging.user_events', 'staging.user_first_seen', 'staging.user_identities']
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Literal

import sqlglot
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from sqlglot import exp

from edp.errors import ConfigError

MODELS_DIR = Path(__file__).parent / "models"
LAYERS = ("staging", "mart")

_CONFIG_LINE = re.compile(r"^--\s*config:\s*(?P<body>\{.*\})\s*$", re.MULTILINE)
_CHECK_LINE = re.compile(r"^--\s*check:\s*(?P<name>[a-z][a-z0-9_]*)\s*$", re.MULTILINE)
CHECKS_SUFFIX = ".checks.sql"
_PARAM = re.compile(r"@([A-Za-z_][A-Za-z0-9_]*)")


class ModelConfig(BaseModel):
    """How a model's rows are written (from its ``-- config:`` line)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    strategy: Literal["insert_overwrite", "merge"]
    partition_by: str | None = None
    unique_key: tuple[str, ...] = ()
    window: Literal["day", "week"] = "day"

    @model_validator(mode="after")
    def _needs_keys(self) -> ModelConfig:
        if self.strategy == "insert_overwrite" and not self.partition_by:
            raise ValueError("insert_overwrite needs partition_by")
        if self.strategy == "merge" and not self.unique_key:
            raise ValueError("merge needs unique_key")
        return self


@dataclass(frozen=True)
class Check:
    """One data-quality assertion: a query returning the violating rows."""

    name: str
    sql: str

    @property
    def params(self) -> frozenset[str]:
        """Names of the ``@params`` the query uses."""
        return frozenset(_PARAM.findall(_strip_comments(self.sql)))


@dataclass(frozen=True)
class Model:
    """One SQL model: its target table, SQL body, write config, upstreams and checks."""

    ref: str
    path: Path
    sql: str
    config: ModelConfig
    reads: frozenset[str]
    depends_on: frozenset[str]
    checks: tuple[Check, ...] = ()

    @property
    def layer(self) -> str:
        return self.ref.split(".", 1)[0]

    @property
    def params(self) -> frozenset[str]:
        """Names of the ``@params`` the SQL uses (only those are bound)."""
        return frozenset(_PARAM.findall(_strip_comments(self.sql)))


def _strip_comments(sql: str) -> str:
    return "\n".join(line.split("--", 1)[0] for line in sql.splitlines())


def parse_config(sql: str, where: str) -> ModelConfig:
    """The model's ``-- config: {...}`` line as a :class:`ModelConfig`.

    Example:
        >>> parse_config("-- config: {strategy: merge, unique_key: [id]}\\nselect 1", "x")
        ModelConfig(strategy='merge', partition_by=None, unique_key=('id',), window='day')
    """
    found = _CONFIG_LINE.findall(sql)
    match = _CONFIG_LINE.search(sql)
    if match is None or len(found) != 1:
        raise ConfigError(f"{where}: expected exactly one '-- config: {{...}}' line")
    try:
        return ModelConfig.model_validate(yaml.safe_load(match.group("body")))
    except (ValidationError, yaml.YAMLError) as exc:
        raise ConfigError(f"{where}: bad config line: {exc}") from exc


def tables_read(sql: str) -> frozenset[str]:
    """Logical ``dataset.table`` names a BigQuery-dialect SELECT reads (CTEs have no dataset).

    Example:
        >>> sorted(tables_read("with a as (select * from raw.user_events) select * from a"))
        ['raw.user_events']
    """
    tree = sqlglot.parse_one(sql, read="bigquery")
    return frozenset(f"{table.db}.{table.name}" for table in tree.find_all(exp.Table) if table.db)


def parse_checks(text: str, where: str) -> tuple[Check, ...]:
    """The named checks of a ``.checks.sql`` file.

    Example:
        >>> parse_checks("-- why\\n-- check: no_nulls\\nselect 1 from t where x is null", "f")
        (Check(name='no_nulls', sql='select 1 from t where x is null'),)
    """
    parts = _CHECK_LINE.split(text)
    if len(parts) < 3:
        raise ConfigError(f"{where}: no '-- check: <name>' line")
    names = parts[1::2]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: duplicate check names")
    return tuple(
        Check(name=name, sql=body.strip().rstrip(";"))
        for name, body in zip(names, parts[2::2], strict=True)
    )


def load_model(path: Path, root: Path = MODELS_DIR) -> Model:
    """Read one model file (and its checks file, if any); its ref is ``<folder>.<file stem>``."""
    rel = path.relative_to(root)
    if len(rel.parts) != 2 or rel.parts[0] not in LAYERS:
        raise ConfigError(f"{path}: models live in models/<layer>/<entity>.sql, layer in {LAYERS}")
    ref = f"{rel.parts[0]}.{path.stem}"
    sql = path.read_text(encoding="utf-8")
    reads = tables_read(sql)
    checks_path = path.with_name(path.stem + CHECKS_SUFFIX)
    checks = (
        parse_checks(checks_path.read_text(encoding="utf-8"), str(checks_path.relative_to(root)))
        if checks_path.exists()
        else ()
    )
    return Model(
        ref=ref,
        path=path,
        sql=sql.strip().rstrip(";"),
        config=parse_config(sql, str(rel)),
        reads=reads,
        depends_on=frozenset(),
        checks=checks,
    )


@lru_cache(maxsize=4)
def load_models(root: Path = MODELS_DIR) -> Mapping[str, Model]:
    """Every model under ``root`` by ref, with its upstream models resolved."""
    loose = [
        load_model(path, root)
        for path in sorted(root.glob("*/*.sql"))
        if not path.name.endswith(CHECKS_SUFFIX)
    ]
    refs = {model.ref for model in loose}
    models = {
        model.ref: Model(
            ref=model.ref,
            path=model.path,
            sql=model.sql,
            config=model.config,
            reads=model.reads,
            depends_on=frozenset((model.reads & refs) - {model.ref}),
            checks=model.checks,
        )
        for model in loose
    }
    _ordered(models, models)  # fail early on a cycle
    return models


def _ordered(models: Mapping[str, Model], chosen: Iterable[str]) -> list[Model]:
    wanted = set(chosen)
    sorter: TopologicalSorter[str] = TopologicalSorter(
        {ref: models[ref].depends_on & wanted for ref in wanted}
    )
    try:
        sorter.prepare()
    except CycleError as exc:
        raise ConfigError(f"models depend on each other in a cycle: {exc.args[1]}") from exc
    ordered: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=lambda r: (LAYERS.index(r.split(".")[0]), r))
        ordered.extend(ready)
        sorter.done(*ready)
    return [models[ref] for ref in ordered]


def plan(models: Mapping[str, Model], select: str | None = None) -> list[Model]:
    """Models to run, upstream first: all (None), one layer (``staging``) or one model ref.

    Raises:
        ConfigError: ``select`` names neither a layer nor a model.
    """
    if select is None:
        return [model for layer in LAYERS for model in plan(models, layer)]
    if select in LAYERS:
        return _ordered(models, [ref for ref in models if ref.startswith(select + ".")])
    if select in models:
        return [models[select]]
    raise ConfigError(
        f"unknown model or layer {select!r}; layers: {', '.join(LAYERS)}; "
        f"models: {', '.join(sorted(models))}"
    )


def parallel_groups(models: Mapping[str, Model], layer: str) -> list[list[str]]:
    """The layer's models in waves: every model of a wave depends only on earlier waves.

    The workflow runs each wave's models in ``parallel`` branches.
    """
    chosen = [ref for ref in models if ref.startswith(layer + ".")]
    sorter: TopologicalSorter[str] = TopologicalSorter(
        {ref: models[ref].depends_on & set(chosen) for ref in chosen}
    )
    sorter.prepare()
    waves: list[list[str]] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        waves.append(ready)
        sorter.done(*ready)
    return waves
