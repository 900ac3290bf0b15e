"""The platform's own SQL models pass the reviewer, or carry a justified inline suppression.

"Pass" means no warning- or error-level finding: info-level ones (the reference tool's
advisory antipatterns, e.g. a CTE read twice) are advice, as in the reference tool. A
suppression is ``-- sqlreview: allow <Rule> because <reason>`` on or above the finding's line.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edp.sqlreview.reviewer import review_sql, script_text, suppressions

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
MODELS = sorted(
    [
        *FUNCTIONS.glob("edp/etl/models/**/*.sql"),
        *FUNCTIONS.glob("edp/cdc/models/*.sql"),
    ]
)


def test_models_found() -> None:
    assert len(MODELS) >= 17  # 7 ETL models + 6 checks files + 4 CDC models


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
