"""``edp demo``: the platform end to end on this machine, then a report with charts.

    edp demo                          # default size, report in docs/demo/
    edp demo --size small --out /tmp/demo --history-days 3
    edp demo --chaos --size small     # kill and restart the pipeline's parts during the replay

Exit status 0 when the run finished and the loss accounting balances (with ``--chaos``: and
nothing was lost or duplicated in staging), 1 otherwise, 130 on Ctrl-C (everything started is
stopped first).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table


def demo(  # noqa: PLR0917 - typer options
    size: Annotated[
        str, typer.Option(help="small (a test run), default (the README's), or large.")
    ] = "default",
    out: Annotated[Path, typer.Option(help="Folder for index.html and summary.md.")] = Path(
        "docs/demo"
    ),
    history_days: Annotated[
        int | None, typer.Option(help="Days of history before the replayed day (1-28).")
    ] = None,
    state_dir: Annotated[
        Path, typer.Option(help="Scratch folder of the run (wiped first).")
    ] = Path(".edp/demo"),
    seed: Annotated[int, typer.Option(help="Generator and shop simulator seed.")] = 7,
    etl: Annotated[
        str,
        typer.Option(
            help="workflow: run workflows/daily_etl.yaml in the workflows-emulator; calls: "
            "make its HTTP calls from the demo; auto: the workflow if its venv can be built."
        ),
    ] = "auto",
    chaos: Annotated[
        bool,
        typer.Option(
            help="Kill and restart the loader, the CDC reader, the flusher and the Pub/Sub "
            "emulator, and restart PostgreSQL, during the replay; report each fault, its "
            "recovery time and the loss checks (edp_tools.demo.chaos)."
        ),
    ] = False,
) -> None:
    """Replay traffic through the whole local platform and write the report."""
    from edp.errors import EdpError
    from edp_tools.demo import DemoConfig, DemoRunner
    from edp_tools.demo.runner import StopRequestedError

    console = Console(stderr=True)
    if etl not in ("auto", "workflow", "calls"):
        raise typer.BadParameter("--etl must be auto, workflow or calls")
    try:
        config = DemoConfig.for_size(
            size,
            out_dir=out,
            state_dir=state_dir,
            history_days=history_days,
            seed=seed,
            etl_mode=etl,  # type: ignore[arg-type]
        )
    except EdpError as exc:
        raise typer.BadParameter(str(exc)) from exc
    try:
        if chaos:
            from edp_tools.demo.chaos import ChaosRunner

            result = ChaosRunner(config, console).run()
        else:
            result = DemoRunner(config, console).run()
    except (KeyboardInterrupt, StopRequestedError):
        console.print("[bold]stopped[/bold]: every process the demo started was stopped")
        raise typer.Exit(130) from None
    except EdpError as exc:
        console.print(f"[red]edp demo failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    table = Table(title="edp demo", show_header=False)
    for key, value in result.headline:
        style = "red" if "NOT" in value else ""
        table.add_row(key, f"[{style}]{value}[/{style}]" if style else value)
    table.add_row("report", str(result.report.absolute()))
    table.add_row("summary", str(result.summary.absolute()))
    console.print(table)
    checks = result.facts.chaos or {}
    if not result.ok or checks.get("lost", 0) or checks.get("duplicates_in_staging", 0):
        raise typer.Exit(1)
