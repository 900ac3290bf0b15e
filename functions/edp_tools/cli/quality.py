"""``edp quality``: run the data-quality agent locally, and score it on simulated history.

Examples::

    edp quality run                                  # every declared check, now
    edp quality run --table raw.user_events --now 2026-11-24T23:00:00+00:00
    edp quality backtest               # precision, recall, MTTD: ours vs the 14-day rule
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from edp.errors import EdpError
from edp.settings import get_settings

app = typer.Typer(
    help="Data-quality agent: run the checks, backtest the detector.", no_args_is_help=True
)
console = Console()
_STYLE = {"fail": "red", "warn": "yellow", "error": "magenta", "pass": "green"}


@app.command("run")
def run(
    table: Annotated[
        list[str] | None, typer.Option("--table", "-t", help="Only this table (repeatable).")
    ] = None,
    now: Annotated[
        str | None, typer.Option("--now", help="Run time, ISO 8601 with zone (default: now).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run summary as JSON.")] = False,
) -> None:
    """One run of the agent on the local warehouse: checks, results table, incidents, alerts."""
    from edp.quality.agent import run_agent
    from edp.warehouse import get_warehouse

    at = dt.datetime.fromisoformat(now) if now else dt.datetime.now(dt.UTC)
    if at.tzinfo is None:
        raise typer.BadParameter("--now needs a time zone, e.g. 2026-11-24T23:00:00+00:00")
    warehouse = get_warehouse(get_settings())
    try:
        outcome = run_agent(warehouse, at, tables=table or None)
    except EdpError as exc:
        raise typer.BadParameter(str(exc)) from exc
    finally:
        warehouse.close()
    if as_json:
        typer.echo(json.dumps(outcome.as_dict(), indent=2, default=str))
        return
    grid = Table(title=f"quality run {outcome.run.run_id} at {at.isoformat()}")
    for col in ("check", "status", "value", "threshold", "expected", "score"):
        grid.add_column(col)
    for r in outcome.run.results:
        style = _STYLE.get(r.status, "")
        grid.add_row(
            r.check_name,
            f"[{style}]{r.status}[/{style}]" if style else r.status,
            *("" if x is None else f"{x:.4g}" for x in (r.metric_value, r.threshold)),
            *("" if x is None else f"{x:.4g}" for x in (r.expected_value, r.score)),
        )
    console.print(grid)
    console.print(f"{outcome.run.counts()} in {outcome.run.seconds:.2f} s")
    for d in outcome.decisions:
        console.print(f"incident {d.state.group_name}: {d.action} ({', '.join(d.state.checks)})")
        report = outcome.reports.get(d.state.incident_id)
        if report:
            console.print(f"  {report.summary}\n  cause: {report.likely_causes[0].cause}")


@app.command("backtest")
def backtest(
    warmup_days: Annotated[int, typer.Option(min=28, help="Clean days to train on.")] = 28,
    clean_days: Annotated[
        int, typer.Option(min=7, help="Clean days scored for false alerts.")
    ] = 28,
    scale: Annotated[float, typer.Option(help="Generator scale of the event history.")] = 0.05,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    as_json: Annotated[bool, typer.Option("--json", help="Print every figure as JSON.")] = False,
) -> None:
    """Simulate history with injected incidents; score our detector and the 14-day rule."""
    from edp_tools.quality.backtest import backtest as run_backtest

    result = run_backtest(warmup_days=warmup_days, clean_days=clean_days, scale=scale, seed=seed)
    if as_json:
        doc = {
            "figures": result.figures(),
            "ours": result.ours.as_dict(),
            "seed_rule": result.seed_rule.as_dict(),
        }
        typer.echo(json.dumps(doc, indent=2, default=str))
        return
    grid = Table(title=f"backtest: {result.days} days, scale {result.scale}")
    grid.add_column("figure")
    grid.add_column("ours")
    grid.add_column("14-day mean, |z| > 2")
    rows = [
        ("precision (default magnitudes)", "precision"),
        ("recall (default magnitudes)", "recall"),
        ("median time to detect, min", "mttd_minutes"),
    ]
    for label, key in rows:
        grid.add_row(
            label,
            f"{getattr(result.ours_default, key):g}",
            f"{getattr(result.seed_rule_default, key):g}",
        )
    grid.add_row(
        "false alerts per week (clean days)",
        f"{result.ours.false_alerts_per_week:g}",
        f"{result.seed_rule.false_alerts_per_week:g}",
    )
    for label in ("subtle", "default", "large"):
        grid.add_row(
            f"recall, {label}",
            f"{result.ours.recall_by_label.get(label, 0):g}",
            f"{result.seed_rule.recall_by_label.get(label, 0):g}",
        )
    for kind, r in result.ours.recall_by_kind.items():
        grid.add_row(f"recall, {kind}", f"{r:g}", f"{result.seed_rule.recall_by_kind[kind]:g}")
    console.print(grid)
    console.print(f"missed (ours): {', '.join(result.ours.missed) or 'none'}")
