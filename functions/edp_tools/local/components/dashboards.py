"""The dashboards page of ``edp dev``: the eight Cloud Monitoring dashboards, rendered locally.

Scrapes the ``/metrics`` of the functions that serve one (:data:`SCRAPED`) every 5 s and
serves ``http://127.0.0.1:<port>/`` (:mod:`edp_tools.observability.dashboards`). The warehouse
tables beside the charts are read with a connection opened per page view, so the DuckDB file
stays free for the writers between views.
"""

from __future__ import annotations

from typing import Any

from edp_tools.local.processes import free_port
from edp_tools.local.stack import Component, Health, StackContext, component
from edp_tools.observability.dashboards import Scraper, serve
from edp_tools.observability.promql import Store

#: Offset from ``--port-base`` (the functions take the first few ports).
PORT_OFFSET = 20
#: Functions with a ``/metrics`` route. Not cdc_flush: any request to it runs a flush.
SCRAPED = ("ingest",)


@component
class Dashboards(Component):
    """Local rendering of ``terraform/dashboards/*.json`` over scraped metrics."""

    name = "dashboards"
    order = 90  # after every component that serves /metrics
    description = "Dashboards (terraform/dashboards, local metrics + warehouse)"

    def __init__(self) -> None:
        self.scraper: Scraper | None = None
        self.server: Any = None

    def start(self, ctx: StackContext) -> None:
        targets = {
            name.removeprefix("fn:"): url
            for name, url in ctx.endpoints.items()
            if name.removeprefix("fn:") in SCRAPED
        }
        settings = ctx.settings

        def query_warehouse(sql: str) -> list[dict[str, Any]]:
            from edp.warehouse import get_warehouse

            warehouse = get_warehouse(settings)
            try:
                return list(warehouse.query(sql).rows)
            finally:
                warehouse.close()

        self.scraper = Scraper(targets, Store()).start()
        port = ctx.port_base + PORT_OFFSET if ctx.port_base else free_port()
        self.server = serve(self.scraper, port, query_warehouse)
        ctx.endpoints["dashboards"] = f"http://127.0.0.1:{port}/"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self.scraper is not None:
            self.scraper.stop()

    def health(self) -> Health:
        if self.scraper is None or self.server is None:
            return Health(False, "not running")
        failing = ", ".join(sorted(self.scraper.errors)) or "none"
        return Health(True, f"scraping {len(self.scraper.targets)} targets; failing: {failing}")
