"""The platform's own SQL models pass the reviewer, or carry a justified inline suppression.

"Pass" means no warning- or error-level finding: info-level ones (the reference tool's
advisory antipatterns, e.g. a CTE read twice) are advice, as in the reference tool. A
suppression is ``-- sqlreview: allow <Rule> because <reason>`` on or above the finding's line.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edp.cdc.staging import cdc_models
from edp.sqlreview.reviewer import review_sql, script_text, suppressions

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
MODELS = sorted(FUNCTIONS.glob("edp/etl/models/**/*.sql"))


def test_models_found() -> None:
    assert len(MODELS) >= 13  # 7 ETL models + 6 checks files


@pytest.mark.parametrize("path", MODELS, ids=lambda p: str(p.relative_to(FUNCTIONS)))
def test_model_passes_review(path: Path) -> None:
    text = script_text(path.read_text(encoding="utf-8"), checks=path.name.endswith(".checks.sql"))
    review = review_sql(text)
    blocking = [f"{f.line}: {f.rule}: {f.message}" for f in review.active if f.severity != "info"]
    assert blocking == []


@pytest.mark.parametrize("path", MODELS, ids=lambda p: str(p.relative_to(FUNCTIONS)))
def test_every_suppression_is_used_and_justified(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    marks = suppressions(text)
    review = review_sql(script_text(text, checks=path.name.endswith(".checks.sql")))
    used = {(f.rule, f.suppressed) for f in review.findings if f.suppressed}
    for rules in marks.values():
        for rule, reason in rules.items():
            assert len(reason.split()) >= 5, f"{rule}: a reason says why, in words"
            assert (rule, reason) in used, f"{rule} suppressed but never found"


def test_suppression_scope() -> None:
    from edp.sqlreview.reviewer import review_sql as run

    header = "-- sqlreview: allow OrderByWithoutLimit because the report is small and sorted\n"
    body = "WITH a AS (SELECT 1 AS x)\nSELECT x FROM a\nORDER BY x\n"
    assert [f.suppressed for f in run(header + body).findings] == ["the report is small and sorted"]
    inside = "WITH a AS (\n  -- sqlreview: allow OrderByWithoutLimit because the inner sort\n"
    inside += "  SELECT 1 AS x ORDER BY x)\nSELECT x FROM a\nORDER BY x\n"
    # the comment covers its own line and the next one, not the outer ORDER BY on line 5
    assert sorted((f.line, f.suppressed or "") for f in run(inside).findings) == [
        (3, "the inner sort"),
        (5, ""),
    ]
    assert (
        run("SELECT x FROM t ORDER BY x -- sqlreview: allow OrderByWithoutLimit")
        .findings[0]
        .suppressed
        is None
    )  # no reason, no suppression


@pytest.mark.parametrize("table", sorted(cdc_models()))
def test_cdc_staging_refresh_passes_review(table: str) -> None:
    """The CDC staging SQL is generated from the catalogue; what runs every minute is the
    incremental MERGE, which reads only the partitions ingested since the last checkpoint.
    (The periodic full rebuild scans the whole log on purpose: it is the check.)"""
    review = review_sql(cdc_models()[table].merge_sql(), params={"since": "2026-12-01 00:00:00"})
    blocking = [f"{f.line}: {f.rule}: {f.message}" for f in review.active if f.severity != "info"]
    assert blocking == []
