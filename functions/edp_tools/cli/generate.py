"""``edp generate``: synthetic e-commerce traffic into the warehouse or over HTTP.

Examples::

    edp generate                                   # yesterday, 2.84 M events -> local DuckDB
    edp generate --days 14 --start 2026-11-10 --seed 7 --scale 0.1
    edp generate --days 14 --incidents promo,outage@13T03,nulls,dupes \\
        --ground-truth .edp/ground_truth.json
    edp generate --scale 0.01 --sink http --url http://127.0.0.1:8080 --rate 500

Registered in :mod:`edp_tools.cli.main` as ``app.command("generate")(generate.generate)``.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from edp.errors import EdpError
from edp.settings import get_settings
from edp_tools.generator import Generator, GeneratorConfig, parse_incidents
from edp_tools.generator.sinks import RAW_EVENTS, HttpSender, send_http, write_warehouse


class Sink(StrEnum):
    """Where the events go."""

    warehouse = "warehouse"
    http = "http"
    none = "none"


console = Console(stderr=True)


def generate(
    *,
    days: Annotated[int, typer.Option(min=1, help="Number of days to generate.")] = 1,
    start: Annotated[
        str | None, typer.Option(help="First day (YYYY-MM-DD, UTC); default: DAYS days ago.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same events.")] = 42,
    scale: Annotated[
        float, typer.Option(help="Volume multiplier (1 = 2.84 M events on an average day).")
    ] = 1.0,
    incidents: Annotated[
        str,
        typer.Option(
            help="Comma-separated incidents: promo, outage, nulls, dupes "
            "(each optionally type@DAY[THOUR][xMAGNITUDE], e.g. outage@0T03)."
        ),
    ] = "",
    sink: Annotated[Sink, typer.Option(help="warehouse (fast path), http or none.")] = (
        Sink.warehouse
    ),
    url: Annotated[str, typer.Option(help="Ingest base URL for --sink http.")] = (
        "http://127.0.0.1:8080"
    ),
    write_key: Annotated[
        str | None, typer.Option(help="X-Write-Key for --sink http (default: EDP_WRITE_KEYS[0]).")
    ] = None,
    rate: Annotated[
        float | None, typer.Option(help="--sink http: events per second cap (default: none).")
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="--sink http: parallel requests.")] = 8,
    batch_size: Annotated[int, typer.Option(min=1, help="--sink http: events per request.")] = 50,
    ground_truth: Annotated[
        Path | None, typer.Option(help="Write the ground-truth JSON (incidents, volumes) here.")
    ] = None,
) -> None:
    """Generate DAYS days of realistic shop traffic (seeded, reproducible)."""
    first = (
        date.fromisoformat(start) if start else (datetime.now(UTC) - timedelta(days=days)).date()
    )
    try:
        config = GeneratorConfig(
            start=first, days=days, seed=seed, scale=scale, incidents=parse_incidents(incidents)
        )
    except EdpError as exc:
        raise typer.BadParameter(str(exc)) from exc
    generator = Generator(config)
    settings = get_settings()
    warehouse = None
    if sink is Sink.warehouse:
        from edp.contracts.catalog import load_catalog
        from edp.warehouse import get_warehouse

        warehouse = get_warehouse(settings)
        warehouse.create_tables([load_catalog().table(RAW_EVENTS)])
    sender = None
    if sink is Sink.http:
        key = write_key or (
            settings.write_keys[0].get_secret_value() if settings.write_keys else None
        )
        sender = HttpSender(url=url, write_key=key, concurrency=concurrency, rate=rate)

    started = time.perf_counter()
    total = 0
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} days"),
        TextColumn("{task.fields[events]:,} events"),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=console) as progress:
            task = progress.add_task(f"generate -> {sink.value}", total=days, events=0)
            for result in generator.days():
                if warehouse is not None:
                    write_warehouse(warehouse, result)
                elif sender is not None:
                    send_http(sender, result.chunks(100_000), batch_size=batch_size)
                total += result.num_rows
                progress.update(task, advance=1, events=total)
    finally:
        if warehouse is not None:
            warehouse.close()
    elapsed = time.perf_counter() - started
    console.print(
        f"{total:,} events over {days} day(s) from {first} in {elapsed:.1f} s "
        f"({total / max(elapsed, 1e-9):,.0f} events/s), sink={sink.value}"
    )
    if sender is not None:
        st = sender.stats
        console.print(
            f"http: {st.requests:,} requests, {st.accepted:,} accepted, {st.rejected:,} "
            f"rejected, {st.retries:,} retries, {st.failed_requests:,} failed, "
            f"statuses {st.status_counts}"
        )
        if st.events and not st.accepted:
            console.print("[red]ingest accepted none of the events (write key? URL?)[/red]")
            raise typer.Exit(1)
    if ground_truth is not None:
        generator.ground_truth.write(ground_truth)
        console.print(f"ground truth -> {ground_truth}")


app = typer.Typer(help="Synthetic e-commerce traffic.", add_completion=False)
app.command("generate")(generate)
