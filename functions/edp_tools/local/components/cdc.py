"""CDC in ``edp dev``: the shop database, the local Debezium stand-in, and the flusher.

- ``cdc-source`` (55): a ``shop`` database in the local PostgreSQL with the shop schema, the
  publication and a stocked inventory; Debezium's extra topics; exports ``EDP_CDC_SOURCE_DSN``.
- ``cdc-reader`` (60): ``python -m edp_tools.cdc.reader`` (snapshot, then streaming; ready when its
  replication slot is active).
- ``cdc-flush`` (80): ``edp cdc flush --forever``, the local stand-in for Cloud Scheduler
  calling ``cdc_flush`` every minute: pulls continuously, flushes at 100 rows / 5 s, rebuilds
  the staging tables it wrote to once a minute; opens DuckDB per flush only.
"""

from __future__ import annotations

from typing import Any

import psycopg2

from edp_tools.local.processes import ManagedProcess
from edp_tools.local.scrape import metered
from edp_tools.local.stack import Component, Health, StackContext, component

SHOP_DB = "shop"


@component
class CdcSource(Component):
    """Creates the shop database, schema, publication and CDC topics (one-shot)."""

    name = "cdc-source"
    order = 55
    description = "shop database (orders, items, inventory, shipments) + publication"

    def start(self, ctx: StackContext) -> None:
        from edp.cdc.topology import ensure_cdc_topology
        from edp_tools.cdc.shop import apply_schema, connect
        from edp_tools.cdc.shop_simulator import ShopSimulator

        cluster: Any = ctx.values["postgres"]
        admin = psycopg2.connect(ctx.values["postgres_dsn"])
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (SHOP_DB,))
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{SHOP_DB}"')
        admin.close()
        dsn = cluster.dsn_for(SHOP_DB)
        conn = connect(dsn)
        try:
            apply_schema(conn)
        finally:
            conn.close()
        sim = ShopSimulator(dsn)
        try:
            sim.seed_inventory()
        finally:
            sim.close()
        # ctx.settings predates the emulator: take its host from the children's environment.
        settings = ctx.settings.model_copy(
            update={
                "pubsub_emulator_host": ctx.env.get(
                    "PUBSUB_EMULATOR_HOST", ctx.settings.pubsub_emulator_host
                )
            }
        )
        ensure_cdc_topology(settings)
        ctx.env["EDP_CDC_SOURCE_DSN"] = dsn
        ctx.values["cdc_source_dsn"] = dsn
        ctx.endpoints["shop database"] = dsn


@component
class CdcReaderComponent(Component):
    """The local Debezium Server stand-in."""

    name = "cdc-reader"
    order = 60
    description = "shop PostgreSQL -> Debezium-format Pub/Sub (pgoutput)"

    def __init__(self) -> None:
        self.proc: ManagedProcess | None = None

    def start(self, ctx: StackContext) -> None:
        dsn = ctx.values["cdc_source_dsn"]
        slot = ctx.settings.cdc_slot_name
        self.proc = ctx.spawn(self.name, metered(ctx, self.name, "edp_tools.cdc.reader"))

        def slot_active() -> bool:
            try:
                conn = psycopg2.connect(dsn)
            except psycopg2.Error:
                return False
            try:
                with conn.cursor() as cur:
                    cur.execute(
                        "SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot,)
                    )
                    row = cur.fetchone()
                return bool(row and row[0])
            finally:
                conn.close()

        self.proc.wait_ready(slot_active, timeout=120)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()

    def health(self) -> Health:
        if self.proc is None or not self.proc.running:
            return Health(False, "not running")
        return Health(True, f"pid {self.proc.pid}, streaming")

    def processes(self) -> list[ManagedProcess]:
        return [self.proc] if self.proc else []


@component
class CdcFlushComponent(Component):
    """cdc_flush as a continuous loop (Cloud Scheduler's every-minute calls, locally)."""

    name = "cdc-flush"
    order = 80
    description = "cdc-flush.* subscriptions -> raw.cdc_* -> staging (every minute)"

    def __init__(self) -> None:
        self.proc: ManagedProcess | None = None

    def start(self, ctx: StackContext) -> None:
        self.proc = ctx.spawn(
            self.name, metered(ctx, self.name, "edp_tools.cli.cdc", "flush", "--forever")
        )

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()

    def health(self) -> Health:
        if self.proc is None or not self.proc.running:
            return Health(False, "not running")
        return Health(True, f"pid {self.proc.pid}, flushing")

    def processes(self) -> list[ManagedProcess]:
        return [self.proc] if self.proc else []
