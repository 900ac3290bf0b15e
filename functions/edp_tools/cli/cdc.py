"""``edp cdc``: the CDC pipeline on the laptop (source schema, reader, flusher, staging, simulator).

Commands:

- ``edp cdc setup``: create the shop schema + publication in ``EDP_CDC_SOURCE_DSN`` and the CDC
  topics/subscriptions on the Pub/Sub emulator;
- ``edp cdc reader``: the local Debezium stand-in (snapshot, then stream; SIGTERM stops cleanly);
- ``edp cdc flush``: the cdc_flush loop (``--forever`` for the local stack, else one bounded run
  like a Cloud Run invocation); SIGTERM flushes the buffer and exits;
- ``edp cdc refresh-staging``: rebuild ``staging.orders`` etc. from ``raw.cdc_*``;
- ``edp cdc simulate``: drive the shop database with realistic business transactions.

Example:
    >>> from typer.testing import CliRunner
    >>> "reader" in CliRunner().invoke(app, ["--help"]).output
    True
"""

from __future__ import annotations

import json
import logging
import signal
from typing import Annotated

import typer

app = typer.Typer(help="CDC: PostgreSQL -> Debezium-format Pub/Sub -> raw.cdc_* -> staging.")


def _dsn(dsn: str | None) -> str:
    from edp.settings import get_settings

    if dsn:
        return dsn
    secret = get_settings().cdc_source_dsn
    if secret is None:
        raise typer.BadParameter("give --dsn or set EDP_CDC_SOURCE_DSN")
    return secret.get_secret_value()


@app.command()
def setup(dsn: Annotated[str | None, typer.Option(help="Shop database DSN.")] = None) -> None:
    """Create the shop schema, the publication and the CDC Pub/Sub resources."""
    from edp.cdc.topology import ensure_cdc_topology
    from edp_tools.cdc.shop import apply_schema, connect

    conn = connect(_dsn(dsn))
    try:
        apply_schema(conn)
    finally:
        conn.close()
    report = ensure_cdc_topology()
    typer.echo(f"schema applied; pub/sub: {len(report.created)} created")


@app.command()
def reader(
    dsn: Annotated[str | None, typer.Option(help="Shop database DSN.")] = None,
    max_seconds: Annotated[float | None, typer.Option(help="Stop after this long.")] = None,
) -> None:
    """Run the local CDC reader (snapshot, then streaming) until SIGTERM/SIGINT."""
    from edp_tools.cdc.reader import CdcReader, ReaderConfig

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    rdr = CdcReader(ReaderConfig.from_settings(dsn=_dsn(dsn)))
    signal.signal(signal.SIGTERM, rdr.stop)
    signal.signal(signal.SIGINT, rdr.stop)
    rdr.run(max_seconds=max_seconds)


@app.command()
def flush(  # noqa: PLR0917 - typer options
    forever: Annotated[bool, typer.Option(help="Run until SIGTERM (local stack).")] = False,
    max_run_s: Annotated[float | None, typer.Option(help="Stop after this long.")] = None,
    until_idle_s: Annotated[
        float | None, typer.Option(help="Stop once the subscriptions were empty this long.")
    ] = None,
    refresh: Annotated[bool, typer.Option(help="Rebuild the staging tables written to.")] = False,
    refresh_every_s: Annotated[
        float, typer.Option(help="With --forever: rebuild staging this often (Cloud Scheduler).")
    ] = 60.0,
    log_level: Annotated[str, typer.Option(help="Logging level.")] = "INFO",
) -> None:
    """Run the cdc_flush loop: one bounded run (as one Cloud Run call), or --forever.

    The warehouse is opened per flush and closed after, so the local DuckDB file stays usable
    by the other local writers between flushes.
    """
    from edp.cdc.flush import CdcFlusher, FlushStats, open_waiting
    from edp.cdc.staging import refresh_staging
    from edp.settings import get_settings
    from edp.warehouse import get_warehouse

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    settings = get_settings()
    flusher = CdcFlusher(lambda: get_warehouse(settings), settings)
    signal.signal(signal.SIGTERM, flusher.stop)
    signal.signal(signal.SIGINT, flusher.stop)

    def refresh_touched(stats: FlushStats) -> dict[str, int]:
        if not stats.per_table:
            return {}
        warehouse = open_waiting(lambda: get_warehouse(settings))
        try:
            # What cdc_flush does each run: MERGE the changes into staging.
            touched = [ref.removeprefix("raw.cdc_") for ref in stats.per_table]
            return refresh_staging(warehouse, touched, full=False)
        finally:
            warehouse.close()

    if forever:
        from edp.errors import TransientError

        unrefreshed = FlushStats()  # tables written but whose staging refresh failed
        while not flusher.stopped:
            flusher.stats = FlushStats()
            stats = flusher.run(max_run_s=refresh_every_s)
            for ref, n in unrefreshed.per_table.items():
                stats.per_table[ref] = stats.per_table.get(ref, 0) + n
            try:
                refresh_touched(stats)
                unrefreshed = FlushStats()
            except TransientError as exc:  # e.g. the DuckDB file held by another writer
                logging.getLogger(__name__).warning("staging refresh postponed: %s", exc)
                unrefreshed = stats
        return
    if max_run_s is None and until_idle_s is None:
        max_run_s = settings.cdc_flush_max_run_sec
    stats = flusher.run(max_run_s=max_run_s, until_idle_s=until_idle_s)
    out = stats.as_dict()
    if refresh:
        out["staging"] = refresh_touched(stats)
    typer.echo(json.dumps(out, default=str))


@app.command("refresh-staging")
def refresh_staging_cmd() -> None:
    """Rebuild every CDC staging table from raw.cdc_*."""
    from edp.cdc.staging import refresh_staging
    from edp.warehouse import get_warehouse

    warehouse = get_warehouse()
    try:
        typer.echo(json.dumps(refresh_staging(warehouse)))
    finally:
        warehouse.close()


@app.command()
def simulate(
    actions: Annotated[int, typer.Option(help="Business transactions to perform.")] = 1000,
    tps: Annotated[float | None, typer.Option(help="Pace (transactions per second).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    dsn: Annotated[str | None, typer.Option(help="Shop database DSN.")] = None,
) -> None:
    """Drive the shop database: orders, payments, shipments, stock."""
    from edp_tools.cdc.shop_simulator import ShopSimulator

    sim = ShopSimulator(_dsn(dsn), seed=seed)
    try:
        sim.seed_inventory()
        stats = sim.run(actions, tps=tps)
    finally:
        sim.close()
    typer.echo(json.dumps(stats.actions))


if __name__ == "__main__":  # pragma: no cover
    app()
