"""``INFORMATION_SCHEMA.JOBS`` through the BigQuery client (production :class:`JobSource`)."""

from __future__ import annotations

import datetime as dt

from google.cloud import bigquery

from edp.settings import Settings
from edp.sqlreview.history import Job, jobs_sql
from edp.warehouse.bigquery_adapter import _api, bigquery_client


class BigQueryJobs:
    """A day's query jobs of the project, capped by ``maximum_bytes_billed`` like every query."""

    def __init__(self, settings: Settings, client: bigquery.Client | None = None) -> None:
        self.settings = settings
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
            rows = self.client.query(sql, job_config=config).result()
            return [Job.model_validate(dict(row.items())) for row in rows]
