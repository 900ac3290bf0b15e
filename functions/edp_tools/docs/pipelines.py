"""The platform's pipelines as data: what each page of ``docs/pipelines/`` documents.

Each :class:`Pipeline` names where its facts live — its code (``packages``, read with ``ast``),
its Cloud Run entry point (``functions/main.py``) and Terraform function key, the topology keys
it consumes and publishes, the tables it reads and writes — and carries its runbook. Everything
else on a page is read from those places when the docs are built, so a pipeline whose code is
not in the checkout yet still gets a page (saying so), and gets the full page once its package
arrives. Adding a pipeline is one entry here.

The daily ETL adds one page per SQL model (``edp.etl.models``), derived, not listed.

Example:
    >>> [p.key for p in PIPELINES][:3]
    ['ingest', 'stream_load', 'cdc_flush']
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PIPELINES", "Pipeline"]


@dataclass(frozen=True)
class Pipeline:
    """One documented pipeline.

    Attributes:
        key: page name (``docs/pipelines/<key>.md``) and graph node id.
        title: human title.
        packages: Python packages/modules of its code (``edp.cdc``, ``edp_stream_load``).
        overview: the module whose docstring opens the page.
        entry_point: function in ``functions/main.py`` (Cloud Run), if any.
        function: key of ``local.functions`` in ``terraform/06-functions.tf``, if deployed so.
        runs_on: where it runs when it is not a Cloud Run function (GKE manifests, ...).
        consumes: topology subscription keys it reads (``edp.bus.topology``); ``cdc-flush:*``
            means every CDC flush subscription.
        publishes: topology topic keys it publishes to.
        reads: tables it reads (``dataset.table``; ``raw.*`` means every table of a dataset).
        writes: tables it writes.
        sla: the service level it is held to (and where that figure comes from).
        runbook: failure mode -> steps.
    """

    key: str
    title: str
    packages: tuple[str, ...]
    overview: str
    entry_point: str | None = None
    function: str | None = None
    runs_on: str = ""
    consumes: tuple[str, ...] = ()
    publishes: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    sla: str = ""
    runbook: tuple[tuple[str, str], ...] = ()


PIPELINES: tuple[Pipeline, ...] = (
    Pipeline(
        key="ingest",
        title="Event ingest",
        packages=("edp.ingest",),
        overview="edp.ingest.app",
        entry_point="ingest",
        function="ingest",
        runs_on="Cloud Run function `ingest`; the same flask app runs on GKE as the collector "
        "(`gke/base/collector`, HPA 2 -> 10 pods).",
        publishes=("events", "events-bad"),
        sla="Request latency p99 < 50 ms; the `ingest-error-rate` alert fires on sustained 5xx.",
        runbook=(
            (
                "5xx rate above the alert threshold",
                "Check the function's logs for `PublishError`: the events topic missing or "
                "Pub/Sub unavailable. `/readyz` fails while the publisher cannot reach Pub/Sub.",
            ),
            (
                "Clients get 400/413/415",
                "Read the per-field reasons in the response; refused events are on the "
                "`events-bad` topic and archived in `raw.bad_events` with the reason.",
            ),
            (
                "Clients get 401",
                "The write key is not in `EDP_WRITE_KEYS` (Secret Manager `ingest-write-keys`).",
            ),
        ),
    ),
    Pipeline(
        key="stream_load",
        title="Stream load (Beam)",
        packages=("edp.load", "edp_stream_load"),
        overview="edp_stream_load",
        runs_on="Beam job on GKE (Flink operator, `gke/base/flink`) or Dataflow; locally "
        "`edp load` (the local loader).",
        consumes=("events-loader",),
        reads=(),
        writes=("raw.user_events", "raw.user_events_errors"),
        sla="Data latency (event received -> row in raw) under 30 min: the `data-freshness` alert.",
        runbook=(
            (
                "`data-freshness` alert",
                "Check the Beam job on GKE and the `events-loader` backlog (oldest unacked "
                "message age); a stopped job leaves messages on the subscription for 7 days.",
            ),
            (
                "Rows in `raw.user_events_errors`",
                "Each row carries the reason (`RowRejected`): fix the producer or the contract, "
                "then replay from the dead-letter archive subscription.",
            ),
        ),
    ),
    Pipeline(
        key="cdc_flush",
        title="CDC flush",
        packages=("edp.cdc",),
        overview="edp.cdc.flush",
        entry_point="cdc_flush",
        function="cdc_flush",
        consumes=("cdc-flush:*",),
        publishes=("cdc-dead-letter",),
        reads=("raw.cdc_*",),
        writes=(
            "raw.cdc_*",
            "staging.orders",
            "staging.order_items",
            "staging.inventory",
            "staging.shipments",
        ),
        sla="Replication lag (source commit -> row in raw.cdc_*) under 10 s; flush at "
        "`CDC_BATCH_SIZE` rows or `CDC_FLUSH_INTERVAL_SEC` seconds.",
        runbook=(
            (
                "Messages on `cdc-dead-letter`",
                "A `DecodeError` (not a Debezium envelope, unknown op, schema drift): read the "
                "attached error on the archive subscription, fix the schema in `schemas/`, "
                "replay.",
            ),
            (
                "Replication lag above 10 s",
                "Check `cdc_replication_lag_seconds` and the flush subscriptions' backlog; "
                "Debezium Server on GKE must be running (one replica, WAL is sequential).",
            ),
            (
                "`pipeline-failed` on cdc_flush",
                "A `TransientError` from the warehouse: the next scheduler tick retries; the "
                "writes are idempotent by (primary key, LSN).",
            ),
        ),
    ),
    Pipeline(
        key="quality_agent",
        title="Data-quality agent",
        packages=("edp.quality",),
        overview="edp.quality",
        entry_point="quality_check",
        function="quality_check",
        reads=("raw.*", "staging.*"),
        writes=("monitoring.data_quality_checks",),
        sla="Every 30 minutes (Cloud Scheduler).",
        runbook=(
            (
                "A check fails",
                "Read the report in Slack and the row in `monitoring.data_quality_checks`; "
                "follow the lineage of the failing table upstream (this index) to its source.",
            ),
        ),
    ),
    Pipeline(
        key="sql_reviewer",
        title="SQL cost reviewer",
        packages=("edp.sqlreview",),
        overview="edp.sqlreview",
        entry_point="sql_review",
        function="sql_review",
        reads=("staging.*", "mart.*"),
        sla="Daily BigQuery spend under the `bigquery-daily-cost` alert's threshold.",
        runbook=(
            (
                "`bigquery-daily-cost` alert",
                "Run the reviewer over the day's queries; apply the priced rewrites, and check "
                "that every query on a partitioned table filters on its partition column.",
            ),
        ),
    ),
)

#: The daily ETL's service level, shown on every model page.
ETL_SLA = (
    "Done by the start of the working day: starts 03:00 Asia/Seoul; a failed execution "
    "fires `pipeline-failed`."
)

#: The daily ETL's runbook, shown on every model page.
ETL_RUNBOOK: tuple[tuple[str, str], ...] = (
    (
        "`pipeline-failed` (workflow execution FAILED)",
        "Find the failed row in `monitoring.pipeline_runs` (error text, model, window); fix the "
        'cause, then rerun the day: start the workflow with `{"date": "YYYY-MM-DD"}` (the run '
        "is idempotent: it rewrites its window).",
    ),
    (
        "`DataQualityError`",
        "A check in the model's `.checks.sql` found violating rows in the window it wrote: run "
        "the named check's query for the window to see them.",
    ),
    (
        "`TransientError` / HTTP 5xx",
        "Retried by the workflow (`callEtl`); if retries ran out, rerun the day.",
    ),
)
