"""The metric references of the alert policies and dashboards, as data.

A small reader of the PromQL (and Monitoring filter) text in ``terraform/09-monitoring.tf`` and
``terraform/dashboards/*.json``: which metric names each query reads, with which label matchers,
and which labels its aggregations group by. Enough for PromQL as Cloud Monitoring accepts it
(https://cloud.google.com/monitoring/promql): selectors ``name{label op "value"}``, range
``[5m]``, aggregations ``op by (labels) (expr)`` / ``op (expr) by (labels)``, functions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "terraform"

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{([^{}]*)\}")
_MATCHER = re.compile(r"\s*([a-zA-Z_][\w]*)\s*(=~|!~|!=|=)\s*\"(?:[^\"\\]|\\.)*\"\s*,?")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)")
_IDENT = re.compile(r"(?<![\w:.])([a-zA-Z_][\w]*(?::[\w]+)?)")
_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
    "unless", "offset", "inf", "nan", "sum", "min", "max", "avg", "count", "stddev", "stdvar",
    "topk", "bottomk", "quantile", "count_values", "group",
}  # fmt: skip


@dataclass(frozen=True)
class Selector:
    """One metric read by a query."""

    name: str
    matchers: tuple[str, ...]


@dataclass(frozen=True)
class Query:
    """One PromQL query and where it comes from."""

    source: str
    text: str

    def selectors(self) -> list[Selector]:
        """Every metric the query reads, with the labels its selector matches on.

        Example:
            >>> q = Query("t", 'sum by (table) (rate(a_total{x="1", y!~"z"}[5m])) / b')
            >>> [(s.name, s.matchers) for s in q.selectors()]
            [('a_total', ('x', 'y')), ('b', ())]
        """
        out = []
        text = strip_strings(self.text)
        for match in _IDENT.finditer(text):
            name = match.group(1)
            if name in _KEYWORDS or _inside(text, match.start(), "{}") or _in_grouping(text, match):
                continue
            after = text[match.end() :].lstrip()
            if after.startswith("("):  # a function or aggregation
                continue
            if _inside_brackets(text, match.start()):
                continue
            matchers: tuple[str, ...] = ()
            if after.startswith("{"):
                block = _MATCHERS.match(after)
                if block:
                    matchers = tuple(m.group(1) for m in _MATCHER.finditer(block.group(1)))
            out.append(Selector(name, matchers))
        return out

    def groupings(self) -> list[tuple[tuple[str, ...], str]]:
        """``(labels, expression)`` of every ``by (...)``: the labels and what they group.

        Example:
            >>> Query("t", "max by (pod) (rate(a[1m])) + sum(b) by (le)").groupings()
            [(('pod',), '(rate(a[1m]))'), (('le',), '(b)')]
        """
        out = []
        for m in _GROUPING.finditer(self.text):
            if m.group(1) not in {"by", "without"}:
                continue
            labels = tuple(x.strip() for x in m.group(2).split(",") if x.strip())
            after = self.text[m.end() :]
            stripped = after.lstrip()
            if stripped.startswith("("):
                start = m.end() + (len(after) - len(stripped))
                out.append((labels, _balanced_from(self.text, start)))
            else:
                out.append((labels, _balanced_before(self.text, m.start())))
        return out


def _balanced_from(text: str, start: int) -> str:
    depth = 0
    for i in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return text[start : i + 1]
    return text[start:]


def _balanced_before(text: str, end: int) -> str:
    i = text.rstrip()[:end].rstrip()
    stop = len(i)
    depth = 0
    for k in range(stop - 1, -1, -1):
        depth += {")": 1, "(": -1}.get(i[k], 0)
        if depth == 0:
            return i[k:stop]
    return i


def _inside(text: str, pos: int, pair: str) -> bool:
    opened = text.rfind(pair[0], 0, pos)
    return opened != -1 and text.rfind(pair[1], 0, pos) < opened


def _inside_brackets(text: str, pos: int) -> bool:
    return _inside(text, pos, "[]")


def _in_grouping(text: str, match: re.Match[str]) -> bool:
    return any(g.start(2) <= match.start() < g.end(2) for g in _GROUPING.finditer(text))


def _unescape_hcl(text: str) -> str:
    return text.replace('\\"', '"').replace("\\\\", "\\")


def terraform_queries() -> list[Query]:
    """The ``query = "..."`` strings of the alert policies (HCL-escaped quotes undone)."""
    text = (TERRAFORM / "09-monitoring.tf").read_text(encoding="utf-8")
    out = []
    for m in re.finditer(r'^\s*query\s*=\s*("(?:[^"\\]|\\.)*")\s*$', text, re.M):
        out.append(Query("09-monitoring.tf", _unescape_hcl(m.group(1)[1:-1])))
    return out


def _walk(node: Any, path: str) -> Iterator[tuple[str, str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str):
                yield path, key, value
            else:
                yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}[{i}]")


def dashboard_queries() -> list[Query]:
    """Every ``prometheusQuery`` of every dashboard (``filter``s are reported separately)."""
    out = []
    for path in sorted((TERRAFORM / "dashboards").glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        for where, key, value in _walk(doc, path.name):
            if key == "prometheusQuery":
                out.append(Query(f"{where}", value))
    return out


def dashboard_filters() -> list[tuple[str, str]]:
    """Monitoring filters (``metric.type="..."``) of the dashboards, if any use them."""
    out = []
    for path in sorted((TERRAFORM / "dashboards").glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        for where, key, value in _walk(doc, path.name):
            if key == "filter" and "metric.type" in value:
                out.append((where, value))
    return out


def strip_strings(text: str) -> str:
    """Drop string literals (for scans that must not see label values)."""
    return _STRING.sub('""', text)
