"""Findings as SARIF 2.1.0 (the OASIS static-analysis format CI systems annotate code from).

Severity maps to SARIF ``level``: error -> ``error``, warning -> ``warning``, info -> ``note``;
an inline suppression becomes a SARIF ``suppressions`` entry (kind ``inSource``) with its
justification, so code scanning shows it as suppressed rather than dropping it.

Example:
    >>> from edp.sqlreview.model import Finding
    >>> f = Finding(rule="WhereOrder", severity="info", line=3, column=1, message="m")
    >>> log = sarif_log([("models/a.sql", f)])
    >>> log["version"], log["runs"][0]["results"][0]["level"]
    ('2.1.0', 'note')
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from edp.sqlreview.model import Finding

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVELS = {"error": "error", "warning": "warning", "info": "note"}
_HELP = "https://github.com/GoogleCloudPlatform/bigquery-antipattern-recognition#anti-patterns"


def _properties(finding: Finding) -> dict[str, Any]:
    keys = ("bytes_before", "bytes_after", "usd_before", "usd_after", "usd_per_day")
    props = {k: getattr(finding, k) for k in keys if getattr(finding, k) is not None}
    if finding.rewrite is not None:
        props["rewrite"] = finding.rewrite.model_dump(mode="json")
    return props


def sarif_log(
    findings: Iterable[tuple[str, Finding]], rule_names: Sequence[str] | None = None
) -> dict[str, Any]:
    """A SARIF 2.1.0 log of ``(file uri, finding)`` pairs (one run, tool ``edp sql review``)."""
    pairs = list(findings)
    names = list(rule_names or [])
    for _, finding in pairs:
        if finding.rule not in names:
            names.append(finding.rule)
    index = {name: i for i, name in enumerate(names)}
    results = []
    for uri, finding in pairs:
        result: dict[str, Any] = {
            "ruleId": finding.rule,
            "ruleIndex": index[finding.rule],
            "level": _LEVELS[finding.severity],
            "message": {"text": finding.message},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": uri},
                        "region": {"startLine": finding.line, "startColumn": finding.column},
                    }
                }
            ],
            "properties": _properties(finding),
        }
        if finding.suppressed is not None:
            result["suppressions"] = [{"kind": "inSource", "justification": finding.suppressed}]
        results.append(result)
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "edp sql review",
                        "informationUri": _HELP,
                        "rules": [
                            {"id": n, "name": n, "shortDescription": {"text": n}} for n in names
                        ],
                    }
                },
                "results": results,
            }
        ],
    }
