"""Benchmark harness behind ``nox -s bench``: a tiny registry of benchmark functions.

A benchmark is a plain function returning ``{key: number}``; keys are exactly the ones the
issues name (``generate.day_seconds``, ``etl.day.rss_mib``, ...). It declares the issue's bars so
``docs/benchmarks.md`` can say pass or fail. Register one in its own module of this package
(``edp_tools/bench/<area>.py``); every module here is imported automatically by :func:`discover`::

    from edp_tools.bench import Bar, benchmark

    @benchmark(
        "generate",
        bars=[Bar("generate.day_seconds", "<", 60, unit="s")],
        units={"generate.events_per_s": "events/s"},
    )
    def bench_generate() -> dict[str, float]:
        ...
        return {"generate.day_seconds": 12.5, "generate.events_per_s": 227_000.0}

Run with ``python -m edp_tools.bench [prefix ...] [--out docs]``: each selected benchmark runs in a
fresh interpreter (clean memory figures), results are merged into ``docs/benchmarks.json`` and
rendered to ``docs/benchmarks.md`` (see :mod:`edp_tools.bench.report`). Peak-RSS helpers for
memory bars live in :mod:`edp_tools.bench.rss`.

Example:
    >>> Bar("generate.day_seconds", "<", 60, unit="s").passes(12.0)
    True
"""

from __future__ import annotations

import importlib
import operator
import pkgutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from edp.errors import ConfigError

Figures = dict[str, float]
BenchmarkFn = Callable[[], Mapping[str, float]]
Op = Literal["<", "<=", ">", ">="]

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
# Modules of this package that are the harness itself, not benchmarks.
_HARNESS_MODULES = frozenset({"__main__", "meanings", "report", "rss", "runner"})


@dataclass(frozen=True)
class Bar:
    """A pass/fail threshold an issue sets on one figure, e.g. ``generate.day_seconds < 60``."""

    key: str
    op: Op
    threshold: float
    unit: str = ""
    source: str = ""  # the requirement the bar comes from, e.g. "ingest latency SLO"

    def passes(self, value: float) -> bool:
        """Whether ``value`` meets the bar.

        Example:
            >>> Bar("cdc.burst.rss_mib", "<=", 256, unit="MiB").passes(300.0)
            False
        """
        return _OPS[self.op](value, self.threshold)

    def describe(self) -> str:
        """Human form, e.g. ``< 60 s``."""
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.op} {self.threshold:g}{unit}"


@dataclass(frozen=True)
class Benchmark:
    """One registered benchmark."""

    name: str
    fn: BenchmarkFn
    module: str
    bars: tuple[Bar, ...] = ()
    units: Mapping[str, str] = field(default_factory=dict)
    description: str = ""

    def unit_of(self, key: str) -> str:
        """The unit of a figure (declared units first, then the bar's unit)."""
        if key in self.units:
            return self.units[key]
        for bar in self.bars:
            if bar.key == key:
                return bar.unit
        return ""

    def matches(self, selectors: Sequence[str]) -> bool:
        """Selected by a prefix of its name, or by a key that lies under its name."""
        if not selectors:
            return True
        return any(
            self.name.startswith(sel) or sel.startswith(self.name + ".") or sel == self.name
            for sel in selectors
        )


_REGISTRY: dict[str, Benchmark] = {}


def benchmark(
    name: str,
    *,
    bars: Iterable[Bar] = (),
    units: Mapping[str, str] | None = None,
    description: str = "",
) -> Callable[[BenchmarkFn], BenchmarkFn]:
    """Register ``fn`` as the benchmark ``name`` (a key prefix such as ``"generate"``).

    Raises:
        ConfigError: another module already registered ``name``.
    """

    def register(fn: BenchmarkFn) -> BenchmarkFn:
        existing = _REGISTRY.get(name)
        if existing is not None and (existing.module, existing.fn.__qualname__) != (
            fn.__module__,
            fn.__qualname__,
        ):
            raise ConfigError(
                f"benchmark {name!r} registered twice: {existing.module} and {fn.__module__}"
            )
        doc = (fn.__doc__ or "").strip().splitlines()
        _REGISTRY[name] = Benchmark(
            name=name,
            fn=fn,
            module=fn.__module__,
            bars=tuple(bars),
            units=dict(units or {}),
            description=description or (doc[0] if doc else ""),
        )
        return fn

    return register


_BROKEN: dict[str, str] = {}


def discover() -> dict[str, Benchmark]:
    """Import every module of ``edp_tools.bench`` and return the registry, by name.

    A module that fails to import is skipped (see :func:`broken_modules`), so one area's
    broken benchmark does not stop everyone else's figures.
    """
    _BROKEN.clear()
    for info in pkgutil.iter_modules(__path__):
        if info.name in _HARNESS_MODULES or info.name.startswith("_"):
            continue
        try:
            importlib.import_module(f"{__name__}.{info.name}")
        except Exception as exc:  # any import-time failure of someone's module
            _BROKEN[info.name] = f"{type(exc).__name__}: {exc}"
    return dict(sorted(_REGISTRY.items()))


def broken_modules() -> dict[str, str]:
    """Benchmark modules that failed to import at the last :func:`discover`, with the error."""
    return dict(_BROKEN)


def select(selectors: Sequence[str]) -> list[Benchmark]:
    """The registered benchmarks a list of prefixes selects (all when empty).

    Raises:
        ConfigError: a selector matches no benchmark.
    """
    benchmarks = discover()
    for sel in selectors:
        if not any(b.matches([sel]) for b in benchmarks.values()):
            raise ConfigError(
                f"no benchmark matches {sel!r}; known: {', '.join(benchmarks) or 'none'}"
            )
    return [b for b in benchmarks.values() if b.matches(selectors)]


def all_bars() -> dict[str, Bar]:
    """Every declared bar of every registered benchmark, by figure key."""
    return {bar.key: bar for b in discover().values() for bar in b.bars}


__all__ = [
    "Bar",
    "Benchmark",
    "Figures",
    "all_bars",
    "benchmark",
    "broken_modules",
    "discover",
    "select",
]
