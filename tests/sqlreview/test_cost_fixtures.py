"""Cost rules against their fixture files (``fixtures/<Rule>/<case>.sql`` + ``.expected``).

Each ``.expected`` holds ``<line>: <message>`` per finding, written by hand from the
catalogue (see ``fixtures/SOURCE.md``); ``.context.json`` (optional) holds review context.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edp.sqlreview.context import RuleContext
from edp.sqlreview.reviewer import review
from edp.sqlreview.rules import COST_RULES
from edp.sqlreview.source import Source

FIXTURES = Path(__file__).parent / "fixtures"
CASES = sorted((rule, path) for rule in COST_RULES for path in (FIXTURES / rule).glob("*.sql"))


def test_every_cost_rule_has_fixtures() -> None:
    assert {rule for rule, _ in CASES} == set(COST_RULES)


@pytest.mark.parametrize(("rule", "path"), CASES, ids=lambda v: getattr(v, "stem", v))
def test_cost_fixture(rule: str, path: Path) -> None:
    expected = [
        line for line in path.with_suffix(".expected").read_text(encoding="utf-8").splitlines()
    ]
    context_file = path.with_suffix(".context.json")
    extra = json.loads(context_file.read_text()) if context_file.exists() else {}
    ctx = RuleContext(source=Source.parse(path.read_text(encoding="utf-8")), **extra)
    got = review(ctx, rules={rule: COST_RULES[rule]})
    assert [f"{f.line}: {f.message}" for f in got.findings] == expected
