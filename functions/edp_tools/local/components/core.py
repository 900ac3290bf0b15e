"""The stack's foundations: message bus, source database, topics, warehouse tables."""

from __future__ import annotations

from edp_tools.local.postgres import PostgresCluster
from edp_tools.local.processes import ManagedProcess
from edp_tools.local.pubsub_emulator import PubSubEmulator
from edp_tools.local.stack import Component, Health, StackContext, component


@component
class PubSub(Component):
    """The Pub/Sub emulator; exports ``PUBSUB_EMULATOR_HOST`` to every later child."""

    name = "pubsub"
    order = 10
    description = "Pub/Sub emulator"

    def __init__(self) -> None:
        self.emulator: PubSubEmulator | None = None

    def start(self, ctx: StackContext) -> None:
        self.emulator = PubSubEmulator(
            ctx.settings.project, log_path=ctx.log_dir / "pubsub-emulator.log"
        ).start()
        ctx.export(**self.emulator.env())
        ctx.values["pubsub_emulator_host"] = self.emulator.host
        ctx.endpoints["pubsub"] = self.emulator.host

    def stop(self) -> None:
        if self.emulator is not None:
            self.emulator.stop()

    def health(self) -> Health:
        if self.emulator is None or not self.emulator.running:
            return Health(False, "not running")
        return Health(self.emulator.healthy(), f"PUBSUB_EMULATOR_HOST={self.emulator.host}")

    def processes(self) -> list[ManagedProcess]:
        return [self.emulator.process] if self.emulator and self.emulator.process else []


@component
class Postgres(Component):
    """The shop's source database (PostgreSQL 15, wal_level=logical) under ``<state>/postgres``.

    Exports ``EDP_CDC_SOURCE_DSN`` to later children (the CDC reader streams from it).
    """

    name = "postgres"
    order = 20
    description = "PostgreSQL 15 (wal_level=logical)"

    def __init__(self) -> None:
        self.cluster: PostgresCluster | None = None

    def start(self, ctx: StackContext) -> None:
        self.cluster = PostgresCluster(ctx.state_dir / "postgres").start()
        ctx.values["postgres"] = self.cluster
        ctx.values["postgres_dsn"] = self.cluster.dsn
        ctx.export(EDP_CDC_SOURCE_DSN=self.cluster.dsn)
        ctx.endpoints["postgres"] = self.cluster.url

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()

    def health(self) -> Health:
        if self.cluster is None or not self.cluster.running:
            return Health(False, "not running")
        return Health(True, self.cluster.url)

    def processes(self) -> list[ManagedProcess]:
        return [self.cluster.process] if self.cluster and self.cluster.process else []


@component
class Topics(Component):
    """Every topic and subscription of :func:`edp.bus.build_topology` on the emulator."""

    name = "topology"
    order = 30
    description = "Pub/Sub topics and subscriptions"

    def __init__(self) -> None:
        self.detail = ""

    def start(self, ctx: StackContext) -> None:
        from edp.bus import build_topology, ensure_topology

        topology = build_topology(ctx.settings)
        report = ensure_topology(topology, settings=ctx.settings)
        self.detail = (
            f"{len(topology.topics)} topics, {len(topology.subscriptions)} subscriptions "
            f"({len(report.created)} created)"
        )

    def health(self) -> Health:
        return Health(True, self.detail)


@component
class WarehouseTables(Component):
    """Every catalogue table in the local warehouse (DuckDB file under the state folder)."""

    name = "warehouse"
    order = 40
    description = "warehouse tables"

    def __init__(self) -> None:
        self.detail = ""

    def start(self, ctx: StackContext) -> None:
        from edp.contracts.catalog import load_catalog
        from edp.warehouse import get_warehouse

        warehouse = get_warehouse(ctx.settings)
        try:
            warehouse.create_tables()
        finally:
            warehouse.close()  # DuckDB allows one writer process: release the file
        tables = len(load_catalog().tables)
        where = (
            str(ctx.settings.duckdb_file)
            if ctx.settings.warehouse == "duckdb"
            else f"BigQuery project {ctx.settings.project}"
        )
        self.detail = f"{tables} tables in {where}"
        ctx.endpoints["warehouse"] = where

    def health(self) -> Health:
        return Health(True, self.detail)
