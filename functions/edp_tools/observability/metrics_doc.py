"""Keep ``docs/metrics.md``'s metric table equal to :mod:`edp.observability.catalogue`.

Run ``python -m edp_tools.observability.metrics_doc`` after declaring a metric; a test fails
while the committed table differs.

Example:
    >>> text = "intro\\n<!-- metrics:begin -->\\nold\\n<!-- metrics:end -->\\nrest\\n"
    >>> print(with_table(text, "| new |\\n"))
    intro
    <!-- metrics:begin -->
    | new |
    <!-- metrics:end -->
    rest
    <BLANKLINE>
"""

from __future__ import annotations

import re
from pathlib import Path

from edp.observability.catalogue import markdown_table

DOC = Path(__file__).resolve().parents[3] / "docs" / "metrics.md"
BEGIN, END = "<!-- metrics:begin -->", "<!-- metrics:end -->"


def with_table(text: str, table: str) -> str:
    """``text`` with the part between the markers replaced by ``table``."""
    pattern = re.compile(re.escape(BEGIN) + r"\n.*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise ValueError(f"the document has no {BEGIN} ... {END} block")
    return pattern.sub(lambda _: f"{BEGIN}\n{table}{END}", text)


def main() -> None:
    """Rewrite the table in ``docs/metrics.md``."""
    DOC.write_text(with_table(DOC.read_text(encoding="utf-8"), markdown_table()), encoding="utf-8")


if __name__ == "__main__":
    main()
