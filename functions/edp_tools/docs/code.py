"""What a pipeline's Python code says about itself, read with ``ast`` (nothing is imported).

From the modules of a pipeline and every ``edp`` module they import (transitively):

* the docstrings (module, and the entry-point function's);
* the settings it reads: attribute accesses ``settings.<field>``, ``s.<field>``,
  ``self.settings.<field>``, ``get_settings().<field>`` whose name is a field of
  :class:`edp.settings.Settings`;
* the metrics it emits: ``meter.create_<instrument>("name", ..., description="...")`` calls;
* the errors it raises (``raise Name(...)``) with the raised class's docstring.

Example:
    >>> facts = scan(["edp.etl.runner"], Path(__file__).resolve().parents[3])
    >>> "etl_lookback_days" in facts.settings, "pipeline_runs_total" in facts.metric_names
    (True, True)
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from edp.settings import Settings

__all__ = ["CodeFacts", "Metric", "RaisedError", "module_docstring", "module_path", "scan"]

_INSTRUMENTS = {
    "create_counter": "counter",
    "create_up_down_counter": "up-down counter",
    "create_histogram": "histogram",
    "create_gauge": "gauge",
    "create_observable_counter": "counter",
    "create_observable_gauge": "gauge",
    "create_observable_up_down_counter": "up-down counter",
}
_SETTINGS_NAMES = {"settings", "s", "_settings", "cfg"}
#: Packages whose imports are followed (the production package; the Beam job's package).
_ROOT_PACKAGES = ("edp", "edp_stream_load")
#: Generated code: large, and reads no settings.
_SKIP = ("edp.contracts.generated",)


@dataclass(frozen=True, order=True)
class Metric:
    """An OpenTelemetry instrument created in the code."""

    name: str
    kind: str
    description: str
    module: str


@dataclass(frozen=True, order=True)
class RaisedError:
    """An exception class the code raises, with its docstring's first line."""

    name: str
    doc: str
    modules: tuple[str, ...]


@dataclass(frozen=True)
class CodeFacts:
    """Everything read from a pipeline's modules."""

    modules: tuple[str, ...]
    settings: frozenset[str]
    metrics: tuple[Metric, ...]
    errors: tuple[RaisedError, ...]
    missing: tuple[str, ...] = field(default=())

    @property
    def metric_names(self) -> frozenset[str]:
        return frozenset(m.name for m in self.metrics)


@lru_cache(maxsize=2048)
def module_path(name: str, root: Path) -> Path | None:
    """The source file of module ``name`` in the checkout at ``root`` (None when absent).

    Example:
        >>> module_path("edp.etl.runner", Path(__file__).resolve().parents[3]).name
        'runner.py'
    """
    parts = name.split(".")
    for base in (root / "functions", root / "beam"):
        candidate = base.joinpath(*parts)
        if candidate.with_suffix(".py").is_file():
            return candidate.with_suffix(".py")
        if (candidate / "__init__.py").is_file():
            return candidate / "__init__.py"
        if candidate.is_dir() and any(candidate.glob("*.py")):
            return candidate  # a namespace package (no __init__.py)
    return None


@lru_cache(maxsize=512)
def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def module_docstring(name: str, root: Path) -> str:
    """The module's docstring ('' when the module or its docstring is absent)."""
    path = module_path(name, root)
    return (ast.get_docstring(_parse(path)) or "") if path and path.is_file() else ""


def function_docstring(name: str, function: str, root: Path) -> str:
    """The docstring of top-level ``function`` in module ``name`` ('' when absent)."""
    path = module_path(name, root)
    if path is None or not path.is_file():
        return ""
    for node in _parse(path).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == function:
            return ast.get_docstring(node) or ""
    return ""


def _imports(name: str, tree: ast.Module, root: Path) -> set[str]:
    found: set[str] = set()
    path = module_path(name, root)
    package = name if path is not None and path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {
        m
        for m in found
        if m.split(".")[0] in _ROOT_PACKAGES
        and not m.startswith(_SKIP)
        and module_path(m, root) is not None
    }


def _closure(start: Iterable[str], root: Path) -> tuple[list[str], list[str]]:
    seen: list[str] = []
    missing: list[str] = []
    pending = list(start)
    expand = set(pending)
    while pending:
        name = pending.pop(0)
        if name in seen or name in missing:
            continue
        path = module_path(name, root)
        if path is None:
            missing.append(name)
            continue
        seen.append(name)
        package = path if path.is_dir() else path.parent
        if (path.is_dir() or path.name == "__init__.py") and name in expand:
            # a pipeline's own package: all of its modules belong to the pipeline
            children = [c.stem for c in sorted(package.glob("*.py")) if c.stem != "__init__"]
            children += [c.name for c in sorted(package.iterdir()) if (c / "__init__.py").is_file()]
            for child in children:
                pending.append(f"{name}.{child}")
                expand.add(f"{name}.{child}")
        if path.is_file():
            pending.extend(sorted(_imports(name, _parse(path), root) - set(seen)))
    return seen, missing


def _is_settings(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return node.id in _SETTINGS_NAMES
    if isinstance(node, ast.Attribute):
        return node.attr in _SETTINGS_NAMES
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return node.func.id == "get_settings"
    return False


def _const(node: ast.expr | None) -> str:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else ""


def scan(start: Iterable[str], root: Path) -> CodeFacts:
    """Read the facts of the modules ``start`` and the project modules they import."""
    return _scan(tuple(start), root)


@lru_cache(maxsize=64)
def _scan(start: tuple[str, ...], root: Path) -> CodeFacts:
    modules, missing = _closure(start, root)
    fields = set(Settings.model_fields)
    settings: set[str] = set()
    metrics: set[Metric] = set()
    raised: dict[str, set[str]] = {}
    classes: dict[str, str] = {}
    for name in [*modules, "edp.errors"]:
        path = module_path(name, root)
        if path is None or path.is_dir():
            continue
        for node in ast.walk(_parse(path)):
            if isinstance(node, ast.ClassDef):
                classes.setdefault(node.name, (ast.get_docstring(node) or "").split("\n")[0])
            if name not in modules:
                continue
            if isinstance(node, ast.Attribute) and node.attr in fields and _is_settings(node.value):
                settings.add(node.attr)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                kind = _INSTRUMENTS.get(node.func.attr)
                metric = _const(node.args[0]) if node.args else ""
                metric = metric or next(
                    (_const(k.value) for k in node.keywords if k.arg == "name"), ""
                )
                if kind and metric:
                    description = next(
                        (_const(k.value) for k in node.keywords if k.arg == "description"), ""
                    )
                    metrics.add(Metric(metric, kind, description, name))
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "instrument"
                and len(node.args) >= 2
                and _const(node.args[1])
            ):
                # edp.observability.catalogue.instrument(meter, "name"): kind and meaning are
                # declared once in the catalogue
                from edp.observability.catalogue import metric as declared

                spec = declared(_const(node.args[1]))
                metrics.add(Metric(spec.name, spec.kind, spec.meaning, name))
            elif isinstance(node, ast.Raise) and node.exc is not None:
                target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                error = (
                    target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
                )
                if error[:1].isupper():
                    raised.setdefault(error, set()).add(name)
    errors = tuple(
        RaisedError(error, classes.get(error, ""), tuple(sorted(where)))
        for error, where in sorted(raised.items())
    )
    return CodeFacts(
        tuple(modules), frozenset(settings), tuple(sorted(metrics)), errors, tuple(missing)
    )
