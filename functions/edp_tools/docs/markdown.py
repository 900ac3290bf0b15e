"""Small Markdown helpers for the generated pages: tables, docstrings, Mermaid ids.

Example:
    >>> print(table(["a", "b"], [["x|y", "1"]]))
    | a | b |
    | --- | --- |
    | x\\|y | 1 |
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

__all__ = ["cell", "docstring_markdown", "mermaid_id", "table"]

_ROLE = re.compile(r":(?:func|class|mod|meth|attr|data|exc):`~?([^`]+)`")
_EXAMPLE = re.compile(r"^(?:Example|Examples):\s*$", re.MULTILINE)


def cell(value: object) -> str:
    """A value made safe for one Markdown table cell (no pipes, no line breaks)."""
    text = " ".join(str(value).split())
    return text.replace("|", "\\|") if text else "—"


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join("---" for _ in header) + " |",
    ]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def docstring_markdown(text: str) -> str:
    """A Google/reST-style docstring as Markdown: roles and ````x```` become `x`, ``::``
    blocks become fenced code, and the ``Example:`` section (it runs as a test) is left out.

    Example:
        >>> text = "Run ``x`` with :func:`f`::\\n\\n    edp x\\n\\nExample:\\n    >>> 1"
        >>> print(docstring_markdown(text))
        Run `x` with `f`:
        <BLANKLINE>
        ```
        edp x
        ```
    """
    match = _EXAMPLE.search(text)
    if match:
        text = text[: match.start()]
    text = _ROLE.sub(r"`\1`", text).replace("``", "`")
    out: list[str] = []
    lines = text.rstrip().splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.rstrip().endswith("::"):
            out.append(line.rstrip()[:-1])
            index += 1
            block: list[str] = []
            while index < len(lines) and (not lines[index].strip() or lines[index].startswith(" ")):
                block.append(lines[index])
                index += 1
            while block and not block[-1].strip():
                block.pop()
            while block and not block[0].strip():
                block.pop(0)
            indent = min((len(b) - len(b.lstrip()) for b in block if b.strip()), default=0)
            out += ["", "```", *(b[indent:] for b in block), "```", ""]
            continue
        out.append(line)
        index += 1
    cleaned: list[str] = []
    for line in out:
        if line == "" and cleaned and cleaned[-1] == "":
            continue
        cleaned.append(line)
    while cleaned and cleaned[0] == "" and len(cleaned) > 1:
        cleaned.pop(0)
    while cleaned and cleaned[-1] == "":
        cleaned.pop()
    return "\n".join(cleaned)


def mermaid_id(name: str) -> str:
    """A Mermaid node id for any name.

    Example:
        >>> mermaid_id("raw.cdc_orders")
        'raw_cdc_orders'
    """
    return re.sub(r"[^A-Za-z0-9_]", "_", name)
