"""``edp etl``: run the daily ETL's SQL models locally (and backfill date ranges).

Examples::

    edp etl run --date 2026-11-25                      # every model for one day
    edp etl run --date 2026-11-01 --to 2026-11-25      # backfill, one day after another
    edp etl run --date 2026-11-25 --model mart.orders_daily
    edp etl models                                     # the models, their layer and upstreams
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from edp.errors import EdpError
from edp.etl.models import load_models, plan
from edp.etl.runner import EtlRunner, ModelRunError, RunResult, yesterday
from edp.settings import get_settings

app = typer.Typer(help="Daily ETL: raw -> staging -> marts (SQL models).", no_args_is_help=True)


def _console() -> Console:
    """A console for this command: rich fixes the width (``COLUMNS``) when one is built, so one
    built at import would keep the width of whatever environment imported the module first."""
    return Console()


def _days(start: dt.date, end: dt.date) -> list[dt.date]:
    if end < start:
        raise typer.BadParameter(f"--to {end} is before --date {start}")
    return [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]


@app.command("run")
def run(
    date: Annotated[
        dt.datetime | None,
        typer.Option("--date", formats=["%Y-%m-%d"], help="Run date (default: yesterday)."),
    ] = None,
    to: Annotated[
        dt.datetime | None,
        typer.Option("--to", formats=["%Y-%m-%d"], help="Last day of a backfill range."),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="One model (e.g. mart.orders_daily).")
    ] = None,
    layer: Annotated[
        str | None, typer.Option("--layer", help="Every model of one layer: staging or mart.")
    ] = None,
    lookback: Annotated[
        int | None,
        typer.Option("--lookback", min=0, max=30, help="Days re-processed before each date."),
    ] = None,
) -> None:
    """Run the models for a day (or each day of --date..--to), upstream first, with progress."""
    if model and layer:
        raise typer.BadParameter("give --model or --layer, not both")
    settings = get_settings()
    first = date.date() if date else yesterday(settings.etl_timezone)
    days = _days(first, to.date() if to else first)
    select = model or layer
    try:
        models = plan(load_models(), select)
    except EdpError as exc:
        raise typer.BadParameter(str(exc)) from exc

    from edp.warehouse import get_warehouse

    runner = EtlRunner(get_warehouse(settings), settings=settings, trigger="cli")
    results: list[RunResult] = []
    console = _console()
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("etl", total=len(days) * len(models))
        for day in days:
            progress.update(task, description=f"{day} {models[0].ref}")

            def advance(result: RunResult, day: dt.date = day) -> None:
                results.append(result)
                position = [m.ref for m in models].index(result.model)
                following = models[position + 1].ref if position + 1 < len(models) else "done"
                progress.update(task, advance=1, description=f"{day} {following}")

            try:
                runner.run(day, select, lookback, on_result=advance)
            except ModelRunError as exc:
                results.append(exc.result)
                _report(results, console)
                console.print(f"[red]failed:[/] {exc}")
                raise typer.Exit(1) from exc
    _report(results, console)


def _report(results: list[RunResult], console: Console) -> None:
    table = Table(title="ETL runs")
    for name in ("date", "model", "window", "status", "rows", "MB", "seconds"):
        table.add_column(name, justify="right" if name in ("rows", "MB", "seconds") else "left")
    for r in results:
        table.add_row(
            r.run_date.isoformat(),
            r.model,
            f"{r.window_start}..{r.window_end}",
            "[green]ok[/]" if r.status == "success" else "[red]failed[/]",
            f"{r.rows_written:,}",
            f"{r.bytes_processed / 1e6:,.1f}",
            f"{r.duration_s:.2f}",
        )
    console.print(table)


@app.command("models")
def models() -> None:
    """List the models in run order with their write strategy and upstream models."""
    table = Table(title="ETL models (run order)")
    for name in ("model", "strategy", "partition", "window", "depends on"):
        table.add_column(name)
    for m in plan(load_models()):
        table.add_row(
            m.ref,
            m.config.strategy,
            m.config.partition_by or ",".join(m.config.unique_key),
            m.config.window,
            ", ".join(sorted(m.depends_on)) or "-",
        )
    _console().print(table)
