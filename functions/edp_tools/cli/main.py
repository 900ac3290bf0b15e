"""The ``edp`` command: one entry point for the laptop platform.

Each subcommand group lives in its own module of :mod:`edp_tools.cli` and exposes a typer
``app`` (or a command function) that is registered below — add one line per group.

Example:
    >>> from typer.testing import CliRunner
    >>> "dev" in CliRunner().invoke(app, ["--help"]).output
    True
"""

from __future__ import annotations

import typer

from edp_tools.cli import cdc as cdc_cli
from edp_tools.cli import demo as demo_cli
from edp_tools.cli import dev
from edp_tools.cli import docs as docs_cli
from edp_tools.cli import etl as etl_cli
from edp_tools.cli import generate as generate_cli
from edp_tools.cli import load as load_cli
from edp_tools.cli import quality as quality_cli
from edp_tools.cli import schemas as schemas_cli
from edp_tools.cli import sql as sql_cli

app = typer.Typer(
    name="edp",
    help="E-commerce real-time data platform: run it locally, generate traffic, load, check.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)

app.command("dev")(dev.dev)
app.add_typer(cdc_cli.app, name="cdc")
app.add_typer(etl_cli.app, name="etl")
app.add_typer(load_cli.app, name="load")
app.add_typer(quality_cli.app, name="quality")
app.add_typer(schemas_cli.app, name="schemas")
app.add_typer(docs_cli.app, name="docs")
app.add_typer(sql_cli.app, name="sql")
app.command("generate")(generate_cli.generate)
app.command("demo")(demo_cli.demo)


@app.callback()
def main() -> None:
    """E-commerce real-time data platform (local and GCP)."""


if __name__ == "__main__":  # pragma: no cover
    app()
