"""``INFORMATION_SCHEMA.JOBS`` through the BigQuery client (production :class:`JobSource`)."""

from __future__ import annotations

import datetime as dt

from google.api_core.retry import Retry
from google.cloud import bigquery

from edp.settings import Settings
from edp.sqlreview.history import Job, jobs_sql
from edp.warehouse.bigquery_adapter import CALL_DEADLINE_S, _api, bigquery_client


class BigQueryJobs:
    """A day's query jobs of the project, capped by ``maximum_bytes_billed`` like every query."""

    def __init__(
        self,
        settings: Settings,
        client: bigquery.Client | None = None,
        deadline_s: float = CALL_DEADLINE_S,
    ) -> None:
        self.settings = settings
        self.deadline_s = deadline_s
        self.client = client or bigquery_client(
            settings.project, settings.bigquery_location, settings.bigquery_api_endpoint
        )

    def jobs(self, day: dt.date) -> list[Job]:
        start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
        config = bigquery.QueryJobConfig(
            query_parameters=[
                bigquery.ScalarQueryParameter("day_start", "TIMESTAMP", start),
                bigquery.ScalarQueryParameter("day_end", "TIMESTAMP", start + dt.timedelta(days=1)),
            ],
            maximum_bytes_billed=self.settings.maximum_bytes_billed,
            use_legacy_sql=False,
        )
        sql = jobs_sql(self.settings.project, self.settings.bigquery_location.lower())
        with _api("list jobs"):
            # job_retry=None: the client's own 10-minute job retry would ignore the deadline.
            retry = Retry(deadline=self.deadline_s)
            job = self.client.query(sql, job_config=config, retry=retry, job_retry=None)
            rows = job.result(retry=retry, timeout=self.deadline_s)
            return [Job.model_validate(dict(row.items())) for row in rows]
