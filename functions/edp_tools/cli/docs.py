"""``edp docs``: generate ``docs/pipelines/`` from the code, or fail when it drifted.

Registered in ``edp_tools.cli.main`` as ``app.add_typer(docs.app, name="docs")``::

    edp docs build      # (re)write docs/pipelines/*.md from the code, schemas/ and terraform/
    edp docs check      # exit 1 with a diff when a committed page differs (the tests run it)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edp.errors import ContractError
from edp_tools.contracts.build import repo_root
from edp_tools.docs import build as docs_build

app = typer.Typer(help="Pipeline docs generated from the code (docs/pipelines/).")

RootOption = Annotated[
    Path | None,
    typer.Option("--root", help="Repository root (default: the checkout edp is installed from)."),
]
PagesOption = Annotated[
    Path | None,
    typer.Option("--pages", help="Folder of the pages (default: <root>/docs/pipelines)."),
]


def _root(root: Path | None) -> Path:
    try:
        return root or repo_root()
    except ContractError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


@app.command("build")
def build_command(root: RootOption = None, pages: PagesOption = None) -> None:
    """Write every page (only those that changed); remove pages no pipeline generates."""
    changed = docs_build.build(_root(root), pages)
    for name in changed:
        typer.echo(f"wrote {name}")
    typer.echo(f"docs: {len(changed)} page(s) updated" if changed else "docs: up to date")


@app.command("check")
def check_command(root: RootOption = None, pages: PagesOption = None) -> None:
    """Fail (exit 1) when a committed page differs from what the code generates."""
    problems = docs_build.check(_root(root), pages)
    for problem in problems:
        typer.echo(problem, err=True)
    if problems:
        typer.echo(f"docs: {len(problems)} page(s) out of date: run `edp docs build`", err=True)
        raise typer.Exit(1)
    typer.echo("docs: up to date")
