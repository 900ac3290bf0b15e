"""Run SQL models for a day: incremental by partition, idempotent, recorded.

A run of model M for day D owns the window ``[D - lookback, D]`` (widened to a Monday for
``window: week`` models). ``insert_overwrite`` models delete the window's partitions and insert
the model's rows in one transaction; ``merge`` models MERGE on their unique key. Either way a
rerun, or a backfill over a range run twice, leaves the same table, and a late event inside the
lookback is picked up by the next daily run. Every run (success or failure) becomes one row of
``monitoring.pipeline_runs`` and emits OpenLineage START and COMPLETE/FAIL events with the
model's column lineage (:mod:`edp.lineage.openlineage`).

Example (a fresh DuckDB warehouse):
    >>> import datetime as dt
    >>> runner = EtlRunner(warehouse)  # doctest: +SKIP
    >>> [r.model for r in runner.run(dt.date(2026, 11, 25), "staging")]  # doctest: +SKIP
    ['staging.user_events', 'staging.user_first_seen', 'staging.user_identities']
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any, Literal
from zoneinfo import ZoneInfo

from edp.contracts.catalog import load_catalog
from edp.errors import EdpError, PermanentError, TransientError
from edp.etl.models import Model, load_models, plan
from edp.lineage.openlineage import LineageEmitter
from edp.observability.catalogue import instrument
from edp.observability.metrics import get_meter
from edp.settings import Settings, get_settings
from edp.warehouse.port import Warehouse

PIPELINE = "daily_etl"
RUNS_TABLE = "monitoring.pipeline_runs"
Trigger = Literal["workflow", "cli", "http", "test", "bench"]


@dataclass(frozen=True)
class RunResult:
    """Outcome of one model run for one day (one row of monitoring.pipeline_runs)."""

    run_id: str
    model: str
    run_date: dt.date
    window_start: dt.date
    window_end: dt.date
    status: Literal["success", "failed"]
    rows_written: int
    bytes_processed: int
    duration_s: float
    started_at: dt.datetime
    finished_at: dt.datetime
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (dates as ISO strings)."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, dt.date | dt.datetime):
                out[key] = value.isoformat()
        return out


class DataQualityError(PermanentError):
    """A model's check found violating rows in what the run wrote."""


class ModelRunError(EdpError):
    """A model failed; ``result`` is its recorded failed run, ``completed`` the runs before it.

    ``transient``: the warehouse said retrying may help (TransientError); ``unexpected``: the
    cause was not one of our errors at all (a bug, or a driver error nobody classified).
    """

    def __init__(
        self,
        result: RunResult,
        completed: Sequence[RunResult],
        *,
        transient: bool,
        unexpected: bool = False,
    ) -> None:
        super().__init__(f"{result.model} failed for {result.run_date}: {result.error}")
        self.result = result
        self.completed = list(completed)
        self.transient = transient
        self.unexpected = unexpected


def yesterday(tz: str, now: dt.datetime | None = None) -> dt.date:
    """Yesterday's date in time zone ``tz`` (the workflow's default run date).

    Example:
        >>> yesterday("Asia/Seoul", dt.datetime(2026, 11, 26, 18, 0, tzinfo=dt.UTC))
        datetime.date(2026, 11, 26)
    """
    moment = now or dt.datetime.now(dt.UTC)
    return (moment.astimezone(ZoneInfo(tz)) - dt.timedelta(days=1)).date()


def window(model: Model, day: dt.date, lookback_days: int) -> tuple[dt.date, dt.date]:
    """The partitions a run of ``model`` for ``day`` owns: ``[start, day]``.

    Example:
        >>> from edp.etl.models import load_models
        >>> window(load_models()["mart.retention_cohorts"], dt.date(2026, 11, 26), 3)
        (datetime.date(2026, 11, 23), datetime.date(2026, 11, 26))
    """
    start = day - dt.timedelta(days=lookback_days)
    if model.config.window == "week":
        start -= dt.timedelta(days=start.weekday())
    return start, day


def render(model: Model) -> str:
    """The BigQuery-dialect script that writes the model's window (see module docstring)."""
    spec = load_catalog().table(model.ref)
    columns = spec.column_names
    col_list = ", ".join(columns)
    body = model.sql
    if model.config.strategy == "insert_overwrite":
        partition = model.config.partition_by
        spec.column(partition or "")
        return (
            "BEGIN TRANSACTION;\n"
            f"DELETE FROM {model.ref} WHERE {partition} BETWEEN @start AND @end;\n"
            f"INSERT INTO {model.ref} ({col_list})\n"
            f"SELECT {col_list} FROM (\n{body}\n) AS model_output;\n"
            "COMMIT TRANSACTION;"
        )
    keys = model.config.unique_key
    for key in keys:
        spec.column(key)
    on = " AND ".join(f"target.{key} = source.{key}" for key in keys)
    updates = ", ".join(f"{c} = source.{c}" for c in columns if c not in keys)
    values = ", ".join(f"source.{c}" for c in columns)
    return (
        f"MERGE {model.ref} AS target\n"
        f"USING (\n{body}\n) AS source\n"
        f"ON {on}\n"
        f"WHEN MATCHED THEN UPDATE SET {updates}\n"
        f"WHEN NOT MATCHED THEN INSERT ({col_list}) VALUES ({values});"
    )


def model_params(
    settings: Settings,
    model: Model,
    start: dt.date,
    end: dt.date,
    names: frozenset[str] | None = None,
) -> dict[str, Any]:
    """The bound parameters ``model``'s SQL (or ``names``) uses, for the window ``[start, end]``.

    Example:
        >>> from edp.etl.models import load_models
        >>> model = load_models()["staging.user_first_seen"]
        >>> model_params(get_settings(), model, dt.date(2026, 11, 22), dt.date(2026, 11, 25))
        {'end': datetime.date(2026, 11, 25), 'start': datetime.date(2026, 11, 22)}
    """
    wanted = model.params if names is None else names
    available: dict[str, Any] = {
        "start": start,
        "end": end,
        "tz": settings.etl_timezone,
        "session_timeout_minutes": settings.etl_session_timeout_minutes,
        "bot_events_per_day": settings.etl_bot_events_per_day,
        "retention_max_days": settings.etl_retention_max_days,
        "retention_max_weeks": settings.etl_retention_max_weeks,
        "reporting_currency": settings.etl_reporting_currency,
    }
    unknown = wanted - available.keys()
    if unknown:
        raise EdpError(f"{model.ref} uses unknown parameters: {sorted(unknown)}")
    return {name: available[name] for name in sorted(wanted)}


@dataclass
class EtlRunner:
    """Runs models against a warehouse and records every run.

    Args:
        warehouse: the warehouse port (DuckDB locally, BigQuery in GCP).
        settings: ETL knobs (time zone, lookback, thresholds); default ``get_settings()``.
        models: the model set; default every model under ``edp/etl/models``.
        trigger: who started the runs (stored in pipeline_runs).
        execution_id: the Workflows execution (or CLI invocation) id, stored with each run.
        lineage: where OpenLineage run events go; default from the settings.
    """

    warehouse: Warehouse
    settings: Settings = field(default_factory=get_settings)
    models: Mapping[str, Model] = field(default_factory=load_models)
    trigger: Trigger = "cli"
    execution_id: str | None = None
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    lineage: LineageEmitter | None = None

    def __post_init__(self) -> None:
        if self.lineage is None:
            self.lineage = LineageEmitter.from_settings(self.settings, PIPELINE)

    def params(
        self, model: Model, start: dt.date, end: dt.date, names: frozenset[str] | None = None
    ) -> dict[str, Any]:
        """The bound parameters the model's SQL (or ``names``) uses."""
        return model_params(self.settings, model, start, end, names)

    def check(self, model: Model, start: dt.date, end: dt.date) -> None:
        """Run the model's data-quality checks on the window; raise on the first violation."""
        for check in model.checks:
            violations = self.warehouse.query(
                f"SELECT COUNT(*) AS n FROM ({check.sql}) AS violations",
                self.params(model, start, end, check.params),
            ).scalar()
            if violations:
                raise DataQualityError(
                    f"check {check.name} of {model.ref} failed: {violations} violating rows "
                    f"in {start}..{end}"
                )

    def run_model(self, ref: str, day: dt.date, lookback_days: int | None = None) -> RunResult:
        """Run one model for ``day``; records the run; raises ModelRunError on failure."""
        model = plan(self.models, ref)[0]
        return self._run(model, day, lookback_days, str(uuid.uuid4()), completed=[])

    def run(
        self,
        day: dt.date,
        select: str | None = None,
        lookback_days: int | None = None,
        on_result: Callable[[RunResult], None] | None = None,
    ) -> list[RunResult]:
        """Run all models, one layer or one model for ``day``, upstream first.

        Stops at the first failure (raising ModelRunError with the runs that completed). The
        models of one call share a ``run_id`` (pipeline_runs is keyed by run_id and task).
        """
        run_id = str(uuid.uuid4())
        results: list[RunResult] = []
        for model in plan(self.models, select):
            result = self._run(model, day, lookback_days, run_id, completed=results)
            results.append(result)
            if on_result is not None:
                on_result(result)
        return results

    def record_failure(
        self,
        task: str,
        run_date: dt.date | None,
        error: str,
        started_at: dt.datetime | None = None,
    ) -> str:
        """Record a failed run reported from outside (the workflow's failure path)."""
        now = self.clock()
        run_id = str(uuid.uuid4())
        self._record(
            {
                "run_id": run_id,
                "task": task,
                "run_date": run_date,
                "status": "failed",
                "started_at": started_at or now,
                "finished_at": now,
                "duration_s": (now - (started_at or now)).total_seconds(),
                "rows_written": 0,
                "bytes_processed": 0,
                "error": error[:10_000],
            }
        )
        _metrics().runs.add(1, {"pipeline": PIPELINE, "task": task, "status": "failed"})
        return run_id

    # --- internals ------------------------------------------------------------------------

    def _run(
        self,
        model: Model,
        day: dt.date,
        lookback_days: int | None,
        run_id: str,
        completed: Sequence[RunResult],
    ) -> RunResult:
        lookback = self.settings.etl_lookback_days if lookback_days is None else lookback_days
        start, end = window(model, day, lookback)
        started_at = self.clock()
        t0 = time.perf_counter()
        emitter = self.lineage
        if emitter is not None:
            emitter.emit("START", run_id, model.ref, started_at, sql=model.sql)
        try:
            params = self.params(model, start, end)
            script = self.warehouse.execute_script(render(model), params)
            _metrics().query_duration.record(
                time.perf_counter() - t0, {"pipeline": PIPELINE, "task": model.ref}
            )
            if model.config.strategy == "insert_overwrite":
                rows = int(
                    self.warehouse.query(
                        f"SELECT COUNT(*) AS n FROM {model.ref} "
                        f"WHERE {model.config.partition_by} BETWEEN @start AND @end",
                        {"start": start, "end": end},
                    ).scalar()
                    or 0
                )
            else:
                rows = script.rows_affected
            self.check(model, start, end)
            result = RunResult(
                run_id=run_id,
                model=model.ref,
                run_date=day,
                window_start=start,
                window_end=end,
                status="success",
                rows_written=rows,
                bytes_processed=script.bytes_processed,
                duration_s=time.perf_counter() - t0,
                started_at=started_at,
                finished_at=self.clock(),
            )
        except Exception as exc:  # every failure is recorded, then re-raised as ModelRunError
            failed = RunResult(
                run_id=run_id,
                model=model.ref,
                run_date=day,
                window_start=start,
                window_end=end,
                status="failed",
                rows_written=0,
                bytes_processed=0,
                duration_s=time.perf_counter() - t0,
                started_at=started_at,
                finished_at=self.clock(),
                error=f"{type(exc).__name__}: {exc}",
            )
            self._record_result(failed)
            if emitter is not None:
                emitter.emit(
                    "FAIL", run_id, model.ref, failed.finished_at, sql=model.sql, error=failed.error
                )
            raise ModelRunError(
                failed,
                completed,
                transient=isinstance(exc, TransientError),
                unexpected=not isinstance(exc, EdpError),
            ) from exc
        self._record_result(result)
        if emitter is not None:
            emitter.emit("COMPLETE", run_id, model.ref, result.finished_at, sql=model.sql)
        return result

    def _record_result(self, result: RunResult) -> None:
        self._record(
            {
                "run_id": result.run_id,
                "task": result.model,
                "run_date": result.run_date,
                "status": result.status,
                "started_at": result.started_at,
                "finished_at": result.finished_at,
                "duration_s": result.duration_s,
                "rows_written": result.rows_written,
                "bytes_processed": result.bytes_processed,
                "error": result.error,
            }
        )
        labels = {"pipeline": PIPELINE, "task": result.model, "status": result.status}
        m = _metrics()
        m.runs.add(1, labels)
        m.duration.record(result.duration_s, {"pipeline": PIPELINE, "task": result.model})
        if result.status == "success":
            m.rows.add(result.rows_written, {"pipeline": PIPELINE, "task": result.model})
            m.bytes.add(result.bytes_processed, {"pipeline": PIPELINE, "task": result.model})

    def _record(self, row: dict[str, Any]) -> None:
        full = {
            **row,
            "pipeline": PIPELINE,
            "trigger": self.trigger,
            "execution_id": self.execution_id,
        }
        # the insert id is the table's key (run_id, task): a retried insert is not doubled
        insert_id = f"{row['run_id']}:{row['task']}"
        self.warehouse.insert_rows(RUNS_TABLE, [full], row_ids=[insert_id])


@dataclass(frozen=True)
class _Instruments:
    runs: Any
    duration: Any
    rows: Any
    bytes: Any
    query_duration: Any


@lru_cache(maxsize=1)
def _metrics() -> _Instruments:
    """The ETL's metric instruments, created on first use (never at import)."""
    meter = get_meter("edp.etl")
    return _Instruments(
        runs=instrument(meter, "pipeline_runs_total"),
        duration=instrument(meter, "pipeline_duration_seconds"),
        rows=instrument(meter, "pipeline_rows_processed_total"),
        bytes=instrument(meter, "bigquery_bytes_processed_total"),
        query_duration=instrument(meter, "bigquery_query_duration_seconds"),
    )
