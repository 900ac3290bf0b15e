"""``edp schemas``: compile ``schemas/`` into its derived artefacts, check drift, inspect tables.

Registered in ``edp_tools.cli.main`` as ``app.add_typer(schemas.app, name="schemas")``::

    edp schemas build            # regenerate catalog.json, BigQuery JSON, DuckDB DDL, models, docs
    edp schemas check            # exit 1 listing every drifted file (CI runs the same as a test)
    edp schemas tables           # list the catalogue
    edp schemas ddl raw.user_events
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edp.contracts.catalog import load_catalog
from edp.errors import ContractError
from edp_tools.contracts import build as contracts_build
from edp_tools.contracts.duckdb_ddl import duckdb_create_table_sql

app = typer.Typer(help="Schema contracts: build and check the artefacts derived from schemas/.")

RootOption = Annotated[
    Path | None,
    typer.Option("--root", help="Repository root (default: the checkout edp is installed from)."),
]


def _root(root: Path | None) -> Path:
    try:
        return root or contracts_build.repo_root()
    except ContractError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


@app.command("build")
def build_command(root: RootOption = None) -> None:
    """Regenerate every derived artefact from schemas/ (writes only what changed)."""
    try:
        drifts = contracts_build.build(_root(root))
    except ContractError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    for drift in drifts:
        typer.echo(f"wrote {drift}")
    typer.echo(f"schemas: {len(drifts)} file(s) updated" if drifts else "schemas: up to date")


@app.command("check")
def check_command(root: RootOption = None) -> None:
    """Fail (exit 1) listing every derived file that drifted from schemas/."""
    try:
        drifts = contracts_build.check(_root(root))
    except ContractError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    for drift in drifts:
        typer.echo(str(drift), err=True)
    if drifts:
        typer.echo(f"{len(drifts)} file(s) drifted: run `edp schemas build`", err=True)
        raise typer.Exit(1)
    typer.echo("schemas: all derived artefacts up to date")


@app.command("tables")
def tables_command() -> None:
    """List every catalogue table with its partitioning and clustering."""
    for table in load_catalog():
        part = table.partitioning
        where = f"{part.type}({part.field})" if part else "-"
        cluster = ",".join(table.clustering) or "-"
        typer.echo(f"{table.ref:<36} {len(table.fields):>3} cols  {where:<28} {cluster}")


@app.command("ddl")
def ddl_command(
    ref: Annotated[str, typer.Argument(help="Logical table, e.g. raw.user_events.")],
) -> None:
    """Print the DuckDB CREATE TABLE of one table."""
    try:
        table = load_catalog().table(ref)
    except ContractError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(duckdb_create_table_sql(table, table.dataset))
