"""Where generated events go: straight into the warehouse, or over HTTP to the ingest API.

- **Fast path** (:func:`write_warehouse`): each day's Arrow table, conformed to the catalogue's
  ``raw.user_events`` schema (column order, types, missing nullable columns as NULL), is
  batch-loaded with the warehouse port's ``load_arrow``. The server fields are already filled
  the way ingest fills them, so the rows look exactly like streamed ones.
- **Real path** (:class:`HttpSender`): :func:`request_bodies` turns the rows into native ingest
  request bodies (``{"events": [...], "sent_at": ...}``, client fields only) and the sender
  POSTs them to ``/v1/events`` with the ``X-Write-Key`` header, with bounded concurrency and an
  optional rate limit; 429/5xx are retried with backoff.

Example:
    >>> from datetime import date
    >>> from edp_tools.generator import Generator, GeneratorConfig
    >>> day = Generator(GeneratorConfig(start=date(2026, 11, 24), scale=0.0005)).day(0)
    >>> spec = load_catalog().table(RAW_EVENTS)
    >>> conform(day.table, spec).column_names == list(spec.column_names)
    True
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from edp.contracts.catalog import TableSpec, load_catalog
from edp.errors import ContractError, TransientError
from edp.warehouse.arrow_schema import arrow_schema
from edp.warehouse.port import Warehouse
from edp_tools.generator.core import CLIENT_COLUMNS, DayResult

RAW_EVENTS = "raw.user_events"
# Rows per load_arrow call. DuckDB writes an insert's full row groups (122,880 rows) to disk
# compressed, in parallel, and merges the remainder alone at commit: 500 k rows load at
# ~1.1 M rows/s on two cores, 200 k at ~0.6 M (``warehouse.load_arrow.*`` in the benchmarks).
LOAD_CHUNK_ROWS = 500_000


def _conform_column(
    name: str, column: Any, target: pa.DataType, n: int
) -> pa.Array | pa.ChunkedArray:
    if column is None:
        return pa.nulls(n, target)
    if column.type == target or (
        pa.types.is_dictionary(column.type) and column.type.value_type == target
    ):
        return column  # the common case: no copy (dictionary strings load as strings)
    if isinstance(column, pa.ChunkedArray):
        column = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    if pa.types.is_list(target) and pa.types.is_struct(target.value_type):
        struct_t = target.value_type
        values = column.flatten()
        children = [
            _conform_column(
                f.name,
                values.field(f.name) if values.type.get_field_index(f.name) >= 0 else None,
                f.type,
                len(values),
            )
            for f in struct_t
        ]
        inner = pa.StructArray.from_arrays(children, fields=list(struct_t))
        offsets = pc.subtract(column.offsets, column.offsets[0])  # the column may be a slice
        return pa.ListArray.from_arrays(offsets, inner, mask=column.is_null())
    if column.type != target:
        try:
            return column.cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise ContractError(f"{name}: cannot cast {column.type} to {target}") from exc
    return column


def conform(table: pa.Table, spec: TableSpec) -> pa.Table:
    """``table`` reshaped to ``spec``: its column order and types (dictionary-encoded strings
    stay dictionary-encoded); NULL for absent nullable columns (and struct fields).

    Raises:
        ContractError: a REQUIRED column is missing, or a column does not cast.
    """
    schema = arrow_schema(spec)
    names = set(table.column_names)
    arrays = []
    for fspec, target in zip(spec.fields, schema, strict=True):
        if fspec.name not in names and fspec.mode == "REQUIRED":
            raise ContractError(f"{spec.ref}.{fspec.name} is REQUIRED but was not generated")
        column = table.column(fspec.name) if fspec.name in names else None
        arrays.append(_conform_column(fspec.name, column, target.type, table.num_rows))
    return pa.Table.from_arrays(arrays, names=schema.names)


def write_warehouse(
    warehouse: Warehouse, rows: pa.Table | DayResult, *, chunk_rows: int = LOAD_CHUNK_ROWS
) -> int:
    """Load generated rows into ``raw.user_events`` in chunks; returns the rows written.

    Given a :class:`DayResult`, each chunk is built just before it is loaded, so memory stays
    bounded by the chunk size (plus the day's numpy recipe) instead of the whole day's table.
    """
    spec = load_catalog().table(RAW_EVENTS)
    if isinstance(rows, DayResult):
        chunks: Iterable[pa.Table] = rows.chunks(chunk_rows)
    else:
        chunks = (rows.slice(lo, chunk_rows) for lo in range(0, rows.num_rows, chunk_rows))
    return sum(warehouse.load_arrow(RAW_EVENTS, conform(chunk, spec)) for chunk in chunks)


# --- HTTP ---------------------------------------------------------------------------------


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def client_events(table: pa.Table) -> Iterator[dict[str, Any]]:
    """The rows as client events (what an SDK sends): client fields only, no NULLs,
    timestamps as RFC 3339, ``params`` as an object."""
    present = [c for c in CLIENT_COLUMNS if c in table.column_names]
    for batch in table.select(present).to_batches(max_chunksize=10_000):
        for row in batch.to_pylist():
            event: dict[str, Any] = {}
            for key, value in row.items():
                if value is None or value == []:
                    continue
                if isinstance(value, datetime):
                    event[key] = _iso(value)
                elif key == "params":
                    event[key] = json.loads(value)
                elif key == "items":
                    event[key] = [{k: v for k, v in it.items() if v is not None} for it in value]
                else:
                    event[key] = value
            yield event


def request_bodies(table: pa.Table, batch_size: int = 50) -> Iterator[dict[str, Any]]:
    """Native ingest request bodies: ``{"events": [...], "sent_at": ...}`` of up to
    ``batch_size`` consecutive events (rows are in arrival order, as SDKs flush them)."""
    batch: list[dict[str, Any]] = []
    for event in client_events(table):
        batch.append(event)
        if len(batch) >= batch_size:
            yield {"events": batch, "sent_at": batch[-1].get("sent_at")}
            batch = []
    if batch:
        yield {"events": batch, "sent_at": batch[-1].get("sent_at")}


@dataclass
class SendStats:
    """What the sender did."""

    requests: int = 0
    events: int = 0
    accepted: int = 0
    rejected: int = 0
    retries: int = 0
    failed_requests: int = 0
    status_counts: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


@dataclass
class HttpSender:
    """POSTs request bodies to the ingest endpoint (``{url}/v1/events``).

    ``rate`` caps events per second (None = as fast as ``concurrency`` allows).
    """

    url: str
    write_key: str | None = None
    concurrency: int = 8
    rate: float | None = None
    timeout_s: float = 10.0
    max_retries: int = 5
    route: str = "/v1/events"
    stats: SendStats = field(default_factory=SendStats)

    def send(self, bodies: Iterable[dict[str, Any]]) -> SendStats:
        """Send every body; returns the stats (also kept in ``self.stats``)."""
        return asyncio.run(self._send_all(bodies))

    async def _send_all(self, bodies: Iterable[dict[str, Any]]) -> SendStats:
        import httpx

        headers = {"Content-Type": "application/json"}
        if self.write_key:
            headers["X-Write-Key"] = self.write_key
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=self.concurrency * 2)
        started = time.perf_counter()
        limits = httpx.Limits(max_connections=self.concurrency)
        async with httpx.AsyncClient(
            base_url=self.url.rstrip("/"), headers=headers, timeout=self.timeout_s, limits=limits
        ) as client:
            workers = [
                asyncio.create_task(self._worker(client, queue)) for _ in range(self.concurrency)
            ]
            async for body in self._paced(bodies, started):
                await queue.put(body)
            for _ in workers:
                await queue.put(None)
            await asyncio.gather(*workers)
        self.stats.seconds = time.perf_counter() - started
        return self.stats

    async def _paced(
        self, bodies: Iterable[dict[str, Any]], started: float
    ) -> AsyncIterator[dict[str, Any]]:
        sent = 0
        for body in bodies:
            if self.rate:
                ahead = sent / self.rate - (time.perf_counter() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
            sent += len(body["events"])
            yield body

    async def _worker(self, client: Any, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        while (body := await queue.get()) is not None:
            await self._post(client, body)

    async def _post(self, client: Any, body: dict[str, Any]) -> None:
        import httpx

        n = len(body["events"])
        payload = json.dumps(body, separators=(",", ":")).encode()
        for attempt in range(self.max_retries + 1):
            try:
                response = await client.post(self.route, content=payload)
                status = response.status_code
            except httpx.TransportError:
                status = 0
            self.stats.status_counts[status] = self.stats.status_counts.get(status, 0) + 1
            if status in {0, 429} or status >= 500:
                if attempt < self.max_retries:
                    self.stats.retries += 1
                    await asyncio.sleep(min(2.0, 0.05 * 2**attempt))
                    continue
                self.stats.failed_requests += 1
                self.stats.requests += 1
                self.stats.events += n
                return
            self.stats.requests += 1
            self.stats.events += n
            accepted = n if status < 300 else 0
            try:
                reply = response.json()
                accepted = int(reply.get("accepted", accepted))
            except (ValueError, AttributeError):
                pass
            self.stats.accepted += accepted
            self.stats.rejected += n - accepted
            return


def send_http(sender: HttpSender, tables: Iterable[pa.Table], batch_size: int = 50) -> SendStats:
    """Send the rows of ``tables`` through ``sender``.

    Raises:
        TransientError: every request failed (endpoint down?).
    """

    def bodies() -> Iterator[dict[str, Any]]:
        for table in tables:
            yield from request_bodies(table, batch_size)

    stats = sender.send(bodies())
    if stats.requests and stats.failed_requests == stats.requests:
        raise TransientError(f"all {stats.requests} requests to {sender.url} failed")
    return stats
