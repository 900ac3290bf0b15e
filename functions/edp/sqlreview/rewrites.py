"""Rewrites are shown only when proven: exact ones after an equivalence check on sample data.

The check itself needs a warehouse with sample data (DuckDB locally), so the core takes it as
a :data:`Verifier`; installed tooling registers one under the ``edp.sqlreview.verifiers``
entry point group (:func:`find_verifier`). Without one (a deployed function), exact rewrites
are withheld — the finding stays, its SQL is not shown. Approximate rewrites are never
"equivalent" by design: they are shown labelled approximate, with their error bound.

Example:
    >>> from edp.sqlreview.reviewer import review
    >>> from edp.sqlreview.context import RuleContext
    >>> src = Source.parse("SELECT a FROM t WHERE b IN (SELECT b FROM u)")
    >>> r = review(RuleContext(source=src))
    >>> verify_rewrites(r, src, lambda before, after, params: True).findings[0].rewrite.verified
    True
    >>> verify_rewrites(r, src, None).findings[0].rewrite is None
    True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any

from edp.settings import Settings
from edp.sqlreview.model import Review
from edp.sqlreview.source import Source

#: ``(statement_before, statement_after, params) -> True when the results are identical``.
Verifier = Callable[[str, str, Mapping[str, Any]], bool]

VERIFIER_GROUP = "edp.sqlreview.verifiers"


def find_verifier(settings: Settings) -> Verifier | None:
    """The verifier installed for ``settings.warehouse`` (None in a deployed function)."""
    found = entry_points(group=VERIFIER_GROUP, name=settings.warehouse)
    if not found:
        return None
    factory = next(iter(found)).load()
    verifier: Verifier = factory(settings=settings)
    return verifier


def verify_rewrites(
    review: Review,
    source: Source,
    verifier: Verifier | None,
    params: Mapping[str, Any] | None = None,
) -> Review:
    """``review`` with every exact rewrite checked; unproven exact rewrites withheld.

    Args:
        review: the review of ``source``.
        source: the reviewed text (the "before" side of each check is its statement).
        verifier: the equivalence check, or None (no sample data here: exact rewrites are
            withheld).
        params: query parameters for both runs.
    """
    findings = []
    for finding in review.findings:
        rewrite = finding.rewrite
        if rewrite is None or not rewrite.exact:
            findings.append(finding)
            continue
        before = source.statements[finding.statement].sql(dialect="bigquery")
        verified = verifier is not None and verifier(before, rewrite.sql, params or {})
        update: dict[str, Any] = (
            {"rewrite": rewrite.model_copy(update={"verified": True})}
            if verified
            else {"rewrite": None}
        )
        findings.append(finding.model_copy(update=update))
    return review.model_copy(update={"findings": tuple(findings)})
