"""``edp load``: the local stream loader (events subscription -> raw.user_events on DuckDB).

    edp load run                      # until Ctrl-C / SIGTERM (flushes and acks, then exits)
    edp load run --exit-when-idle 5   # drain the backlog, stop after 5 s without messages
    edp load run --share-warehouse    # open DuckDB per batch (edp dev: other writers too)

Registered in :mod:`edp_tools.cli.main` as ``app.add_typer(load.app, name="load")``;
``python -m edp_tools.load`` runs the same command (used by the fault test's subprocesses).
"""

from __future__ import annotations

import json
import logging
from contextlib import closing
from typing import Annotated

import typer

app = typer.Typer(help="Stream load: the events subscription into raw.user_events.")


@app.callback()
def _group() -> None:
    """Stream load commands."""


@app.command("run")
def run(
    *,
    subscription: Annotated[
        str | None,
        typer.Option(help="Subscription id (default: settings.subscription_events_loader)."),
    ] = None,
    workers: Annotated[int, typer.Option(min=1, max=32, help="Pull/parse worker processes.")] = 2,
    batch_rows: Annotated[int, typer.Option(min=1, help="Most rows per warehouse write.")] = 20_000,
    batch_delay: Annotated[
        float, typer.Option(min=0.0, help="Longest wait (s) to fill a batch.")
    ] = 0.2,
    dedup_horizon: Annotated[
        float, typer.Option(min=0.0, help="Seconds an event_id is remembered for dedup.")
    ] = 6 * 3600.0,
    exit_when_idle: Annotated[
        float | None,
        typer.Option(help="Stop after this many seconds without messages (drain mode)."),
    ] = None,
    ensure_topology: Annotated[
        bool, typer.Option(help="Create topics/subscriptions and tables first.")
    ] = True,
    share_warehouse: Annotated[
        bool,
        typer.Option(
            help="Open the DuckDB file per batch and close it after, so other local processes "
            "(cdc_flush, etl) can write between batches; default: hold it (fastest)."
        ),
    ] = False,
) -> None:
    """Pull the events subscription and load it until stopped; print a JSON summary."""
    from edp.bus.admin import ensure_topology as ensure_bus
    from edp.bus.clients import get_subscriber, subscription_path
    from edp.settings import get_settings
    from edp.warehouse import get_warehouse
    from edp_tools.load.local_loader import LoaderConfig, LocalLoader, run_until_signalled

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = get_settings()
    if ensure_topology:
        ensure_bus(settings=settings)
        with closing(get_warehouse(settings)) as tables:
            tables.create_tables()
    config = LoaderConfig(
        subscription_path=subscription_path(
            settings.project, subscription or settings.subscription_events_loader
        ),
        emulator_host=settings.pubsub_emulator_host,
        workers=workers,
        max_batch_rows=batch_rows,
        max_batch_delay_s=batch_delay,
        dedup_horizon_s=dedup_horizon,
    )
    if share_warehouse:
        loader = LocalLoader(lambda: get_warehouse(settings), config, get_subscriber(settings))
        stats = run_until_signalled(loader, exit_when_idle_s=exit_when_idle)
    else:
        with closing(get_warehouse(settings)) as warehouse:
            loader = LocalLoader(warehouse, config, get_subscriber(settings))
            stats = run_until_signalled(loader, exit_when_idle_s=exit_when_idle)
    typer.echo(
        json.dumps(
            {
                "messages": stats.messages,
                "rows_loaded": stats.rows_loaded,
                "duplicates": stats.duplicates,
                "dead_letters": stats.dead_letters,
                "batches": stats.batches,
                "write_failures": stats.write_failures,
                "elapsed_s": round(stats.elapsed_s, 3),
            }
        )
    )
