"""Write ``docs/pipelines/`` from the code, or report how the committed pages differ from it.

Example (takes a few seconds: it traces every SQL model and parses Terraform):
    >>> root = Path(__file__).resolve().parents[3]  # doctest: +SKIP
    >>> check(root)                                  # doctest: +SKIP
    []
"""

from __future__ import annotations

import difflib
from pathlib import Path

from edp_tools.docs.pages import render_all
from edp_tools.docs.sections import Facts

__all__ = ["PAGES_DIR", "build", "check", "compare", "render"]

PAGES_DIR = Path("docs") / "pipelines"


def render(root: Path) -> dict[str, str]:
    """Every page, by file name, as the checkout at ``root`` generates it."""
    return render_all(Facts(root))


def build(root: Path, out: Path | None = None) -> list[str]:
    """Write the pages into ``out`` (default ``<root>/docs/pipelines``); remove stale ones.

    Returns the names of the files written or removed (empty: already up to date).
    """
    target = out or root / PAGES_DIR
    target.mkdir(parents=True, exist_ok=True)
    pages = render(root)
    changed: list[str] = []
    for name, text in pages.items():
        path = target / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(name)
    for path in sorted(target.glob("*.md")):
        if path.name not in pages:
            path.unlink()
            changed.append(f"{path.name} (removed)")
    return changed


def check(root: Path, pages_dir: Path | None = None) -> list[str]:
    """How the committed pages in ``pages_dir`` differ from the generated ones (unified diffs;
    empty when they are in step)."""
    return compare(render(root), pages_dir or root / PAGES_DIR)


def compare(pages: dict[str, str], target: Path) -> list[str]:
    """How the files in ``target`` differ from ``pages`` (file name -> expected text).

    Example:
        >>> compare({"a.md": "x\\n"}, Path("/nonexistent"))
        ['a.md: missing (run `edp docs build`)']
    """
    problems: list[str] = []
    for name, text in pages.items():
        path = target / name
        if not path.exists():
            problems.append(f"{name}: missing (run `edp docs build`)")
            continue
        committed = path.read_text(encoding="utf-8")
        if committed != text:
            diff = difflib.unified_diff(
                committed.splitlines(),
                text.splitlines(),
                f"{name} (committed)",
                f"{name} (generated)",
                lineterm="",
                n=1,
            )
            problems.append("\n".join(list(diff)[:40]))
    for path in sorted(target.glob("*.md")) if target.is_dir() else []:
        if path.name not in pages:
            problems.append(f"{path.name}: no pipeline generates it (run `edp docs build`)")
    return problems
