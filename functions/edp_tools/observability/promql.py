"""A small PromQL evaluator over scraped samples: the subset the dashboards use.

The local dashboards render the same ``terraform/dashboards/*.json`` queries Cloud Monitoring
runs, against the samples ``edp dev`` scrapes from its ``/metrics`` endpoints. Supported:
selectors with ``= != =~ !~`` matchers and ``[range]``; ``rate``, ``increase``,
``max_over_time``, ``min_over_time``, ``absent_over_time``, ``abs``, ``histogram_quantile``;
``sum/min/max/avg/count [by (...)]``; arithmetic and comparisons with scalars and between
vectors of equal label sets; ``or``. Cloud Monitoring's ``workload_googleapis_com:<name>`` is
read as ``<name>`` (the local name of the same metric); other ``domain:metric`` names are Google
Cloud system metrics with no local source (:class:`NoLocalSourceError`).

Semantics follow the Prometheus documentation (https://prometheus.io/docs/prometheus/latest/
querying/functions/): ``rate`` = increase over the window / window length (counter resets
counted from zero; no extrapolation, a documented simplification), instant selectors look back
5 minutes, ``histogram_quantile`` interpolates linearly inside the bucket.

Example:
    >>> store = Store()
    >>> for t, v in ((0, 0.0), (30, 30.0), (60, 60.0)):
    ...     store.add("http_requests_total", {"code": "200"}, t, v)
    >>> evaluate('sum(rate(http_requests_total[1m]))', store, at=60)
    {(): 1.0}
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Labels = tuple[tuple[str, str], ...]
Vector = dict[Labels, float]
Matrix = dict[Labels, list[tuple[float, float]]]
LOOKBACK_S = 300.0
WORKLOAD = "workload_googleapis_com:"


class PromQLError(ValueError):
    """The query uses PromQL this evaluator does not implement."""


class NoLocalSourceError(PromQLError):
    """The query reads a Google Cloud system metric (no local equivalent)."""


@dataclass
class Store:
    """Samples by metric name and label set, appended in time order."""

    series: dict[str, dict[Labels, list[tuple[float, float]]]] = field(
        default_factory=lambda: defaultdict(dict)
    )

    def add(self, name: str, labels: Mapping[str, str], t: float, value: float) -> None:
        key = tuple(sorted(labels.items()))
        self.series[name].setdefault(key, []).append((t, value))

    def trim(self, before: float) -> None:
        """Drop samples older than ``before`` (bounded memory)."""
        for by_labels in self.series.values():
            for key in list(by_labels):
                kept = [s for s in by_labels[key] if s[0] >= before]
                if kept:
                    by_labels[key] = kept
                else:
                    del by_labels[key]


_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d+)?(?:e[+-]?\d+)?)(?![\w:])|(?P<dur>\d+[smhdw])"
    r"|(?P<str>\"(?:[^\"\\]|\\.)*\")|(?P<id>[a-zA-Z_][\w:]*)"
    r"|(?P<op>=~|!~|!=|==|>=|<=|[-+*/(){}\[\],=<>]))"
)
_DURATION = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_AGGREGATIONS = {"sum", "min", "max", "avg", "count"}
_COMPARISONS = {">", "<", ">=", "<=", "==", "!="}


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise PromQLError(f"cannot read {text[pos : pos + 20]!r}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


class _Parser:
    """Recursive descent into closures ``(store, at) -> value``."""

    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> str:
        return self.toks[self.i][1] if self.i < len(self.toks) else ""

    def take(self, expected: str | None = None) -> str:
        if self.i >= len(self.toks):
            raise PromQLError("unexpected end of query")
        value = self.toks[self.i][1]
        if expected is not None and value != expected:
            raise PromQLError(f"expected {expected!r}, got {value!r}")
        self.i += 1
        return value

    def parse(self) -> Callable[[Store, float], Any]:
        node = self.expr()
        if self.i != len(self.toks):
            raise PromQLError(f"unexpected {self.peek()!r}")
        return node

    def expr(self) -> Callable[[Store, float], Any]:
        left = self.comparison()
        while self.peek() == "or":
            self.take()
            right = self.comparison()
            left = _or(left, right)
        return left

    def comparison(self) -> Callable[[Store, float], Any]:
        left = self.additive()
        while self.peek() in _COMPARISONS:
            op = self.take()
            left = _binary(op, left, self.additive())
        return left

    def additive(self) -> Callable[[Store, float], Any]:
        left = self.term()
        while self.peek() in {"+", "-"}:
            op = self.take()
            left = _binary(op, left, self.term())
        return left

    def term(self) -> Callable[[Store, float], Any]:
        left = self.primary()
        while self.peek() in {"*", "/"}:
            op = self.take()
            left = _binary(op, left, self.primary())
        return left

    def labels_list(self) -> tuple[str, ...]:
        self.take("(")
        names = []
        while self.peek() != ")":
            names.append(self.take())
            if self.peek() == ",":
                self.take()
        self.take(")")
        return tuple(names)

    def primary(self) -> Callable[[Store, float], Any]:
        kind, value = self.toks[self.i] if self.i < len(self.toks) else ("", "")
        if kind == "num":
            self.take()
            number = float(value)
            return lambda store, at: number
        if value == "(":
            self.take()
            inner = self.expr()
            self.take(")")
            return inner
        if kind != "id":
            raise PromQLError(f"unexpected {value!r}")
        self.take()
        if value in _AGGREGATIONS:
            by: tuple[str, ...] | None = None
            if self.peek() == "by":
                self.take()
                by = self.labels_list()
            self.take("(")
            inner = self.expr()
            self.take(")")
            if self.peek() == "by":
                self.take()
                by = self.labels_list()
            return _aggregate(value, by, inner)
        if self.peek() == "(":
            self.take()
            args = [self.expr()]
            while self.peek() == ",":
                self.take()
                args.append(self.expr())
            self.take(")")
            return _function(value, args)
        return self.selector(value)

    def selector(self, name: str) -> Callable[[Store, float], Any]:
        if name.startswith(WORKLOAD):
            name = name.removeprefix(WORKLOAD)
        elif ":" in name:
            raise NoLocalSourceError(f"{name} is a Google Cloud metric")
        matchers: list[tuple[str, str, str]] = []
        if self.peek() == "{":
            self.take()
            while self.peek() != "}":
                label, op, text = self.take(), self.take(), self.take()
                matchers.append((label, op, text[1:-1].replace('\\"', '"')))
                if self.peek() == ",":
                    self.take()
            self.take("}")
        window: float | None = None
        if self.peek() == "[":
            self.take()
            duration = self.take()
            window = float(duration[:-1]) * _DURATION[duration[-1]]
            self.take("]")
        return _select(name, matchers, window)


def _matches(labels: Labels, matchers: list[tuple[str, str, str]]) -> bool:
    got = dict(labels)
    for label, op, text in matchers:
        value = got.get(label, "")
        ok = {
            "=": value == text,
            "!=": value != text,
            "=~": re.fullmatch(text, value) is not None,
            "!~": re.fullmatch(text, value) is None,
        }[op]
        if not ok:
            return False
    return True


def _select(
    name: str, matchers: list[tuple[str, str, str]], window: float | None
) -> Callable[[Store, float], Any]:
    def run(store: Store, at: float) -> Vector | Matrix:
        span = window if window is not None else LOOKBACK_S
        out: dict[Labels, Any] = {}
        for labels, samples in store.series.get(name, {}).items():
            if not _matches(labels, matchers):
                continue
            inside = [s for s in samples if at - span < s[0] <= at]
            if not inside:
                continue
            out[labels] = inside if window is not None else inside[-1][1]
        return out

    return run


def _increase(samples: list[tuple[float, float]]) -> float:
    total, previous = 0.0, samples[0][1]
    for _, value in samples[1:]:
        total += value - previous if value >= previous else value  # a reset counts from 0
        previous = value
    return total


def _rate(samples: list[tuple[float, float]]) -> float | None:
    elapsed = samples[-1][0] - samples[0][0]
    return _increase(samples) / elapsed if len(samples) > 1 and elapsed > 0 else None


_RANGE_FUNCTIONS: dict[str, Callable[[list[tuple[float, float]]], float | None]] = {
    "rate": _rate,
    "increase": lambda s: _increase(s) if len(s) > 1 else None,
    "max_over_time": lambda s: max(v for _, v in s),
    "min_over_time": lambda s: min(v for _, v in s),
}


def _function(
    name: str, args: list[Callable[[Store, float], Any]]
) -> Callable[[Store, float], Any]:
    if name in _RANGE_FUNCTIONS:
        reduce = _RANGE_FUNCTIONS[name]

        def over_range(store: Store, at: float) -> Vector:
            out = {}
            for labels, samples in args[0](store, at).items():
                value = reduce(samples)
                if value is not None:
                    out[labels] = value
            return out

        return over_range
    if name == "absent_over_time":
        return lambda store, at: {} if args[0](store, at) else {(): 1.0}
    if name == "abs":
        return lambda store, at: {k: abs(v) for k, v in args[0](store, at).items()}
    if name == "histogram_quantile":
        return lambda store, at: _histogram_quantile(args[0](store, at), args[1](store, at))
    raise PromQLError(f"function {name}() is not supported locally")


def _histogram_quantile(q: float, buckets: Vector) -> Vector:
    """Prometheus' bucket interpolation (the lowest bucket starts at 0).

    Example:
        >>> b = {(("le", "0.1"),): 50.0, (("le", "0.5"),): 90.0, (("le", "+Inf"),): 100.0}
        >>> round(_histogram_quantile(0.8, b)[()], 6)  # rank 80: 30/40 into (0.1, 0.5]
        0.4
    """
    groups: dict[Labels, list[tuple[float, float]]] = defaultdict(list)
    for labels, count in buckets.items():
        rest = tuple((k, v) for k, v in labels if k != "le")
        le = dict(labels).get("le")
        if le is not None:
            groups[rest].append((float(le), count))
    out = {}
    for labels, pairs in groups.items():
        pairs.sort()
        total = pairs[-1][1]
        if total <= 0 or not math.isinf(pairs[-1][0]):
            continue
        rank = q * total
        lower_bound, lower_count = 0.0, 0.0
        for bound, count in pairs:
            if count >= rank:
                if math.isinf(bound):
                    out[labels] = lower_bound
                else:
                    width = count - lower_count
                    fraction = (rank - lower_count) / width if width else 0.0
                    out[labels] = lower_bound + (bound - lower_bound) * fraction
                break
            lower_bound, lower_count = bound, count
    return out


def _aggregate(
    op: str, by: tuple[str, ...] | None, inner: Callable[[Store, float], Any]
) -> Callable[[Store, float], Any]:
    def run(store: Store, at: float) -> Vector:
        groups: dict[Labels, list[float]] = defaultdict(list)
        for labels, value in inner(store, at).items():
            key = tuple((k, v) for k, v in labels if by is not None and k in by)
            groups[key].append(value)
        reduce: dict[str, Callable[[list[float]], float]] = {
            "sum": sum,
            "min": min,
            "max": max,
            "avg": lambda v: sum(v) / len(v),
            "count": lambda v: float(len(v)),
        }
        return {k: reduce[op](v) for k, v in groups.items()}

    return run


def _apply(op: str, a: float, b: float) -> float | None:
    if op in _COMPARISONS:
        keep = {">": a > b, "<": a < b, ">=": a >= b, "<=": a <= b, "==": a == b, "!=": a != b}
        return a if keep[op] else None
    if op == "/":
        return a / b if b else math.nan
    return {"+": a + b, "-": a - b, "*": a * b}[op]


def _binary(
    op: str, left: Callable[[Store, float], Any], right: Callable[[Store, float], Any]
) -> Callable[[Store, float], Any]:
    def run(store: Store, at: float) -> Any:
        a, b = left(store, at), right(store, at)
        if isinstance(a, float) and isinstance(b, float):
            return _apply(op, a, b)
        if isinstance(b, float):
            return {k: r for k, v in a.items() if (r := _apply(op, v, b)) is not None}
        if isinstance(a, float):
            return {k: r for k, v in b.items() if (r := _apply(op, a, v)) is not None}
        return {k: r for k, v in a.items() if k in b and (r := _apply(op, v, b[k])) is not None}

    return run


def _or(
    left: Callable[[Store, float], Any], right: Callable[[Store, float], Any]
) -> Callable[[Store, float], Any]:
    def run(store: Store, at: float) -> Vector:
        a, b = left(store, at), right(store, at)
        return {**b, **a}

    return run


def compile_query(text: str) -> Callable[[Store, float], Any]:
    """Parse ``text`` once; the result evaluates it at any time over any store.

    Raises:
        NoLocalSourceError: it reads a Google Cloud system metric.
        PromQLError: it uses PromQL outside the supported subset.
    """
    return _Parser(text).parse()


def evaluate(text: str, store: Store, at: float) -> Vector:
    """The instant vector of ``text`` at time ``at`` (a scalar becomes one unlabelled series)."""
    value = compile_query(text)(store, at)
    return {(): value} if isinstance(value, float) else dict(value)
