"""The query history the scheduled review reads: BigQuery's ``INFORMATION_SCHEMA.JOBS`` in
production, the local warehouse's JSON-lines query log locally (same row shape).

Example:
    >>> import datetime as dt
    >>> day = dt.date(2026, 12, 6)
    >>> "creation_time >= @day_start" in jobs_sql("p", "asia-northeast3")
    True
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from edp.errors import WarehouseError


class Job(BaseModel):
    """One query job (the ``INFORMATION_SCHEMA.JOBS`` columns the review needs)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    job_id: str
    creation_time: dt.datetime
    query: str
    total_bytes_billed: int | None = None


class JobSource(Protocol):
    """Where a day's query jobs come from."""

    def jobs(self, day: dt.date) -> Sequence[Job]:
        """Every successful query job created on ``day`` (UTC)."""


def jobs_sql(project: str, region: str) -> str:
    """The ``INFORMATION_SCHEMA.JOBS_BY_PROJECT`` query of one day's query jobs.

    ``project`` and ``region`` come from settings (validated identifiers), never from a request.
    """
    return (
        "SELECT job_id, creation_time, query, total_bytes_billed "
        f"FROM `{project}`.`region-{region}`.INFORMATION_SCHEMA.JOBS_BY_PROJECT "
        "WHERE creation_time >= @day_start AND creation_time < @day_end "
        "AND job_type = 'QUERY' AND state = 'DONE' AND error_result IS NULL "
        "AND statement_type != 'SCRIPT' "
        "ORDER BY total_bytes_billed DESC"
    )


class QueryLogFile:
    """The local query log (JSON lines, one job per line) as a :class:`JobSource`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def jobs(self, day: dt.date) -> list[Job]:
        if not self.path.exists():
            return []
        found = []
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                job = Job.model_validate(json.loads(line))
            except (ValueError, ValidationError) as exc:
                raise WarehouseError(f"{self.path}:{number}: not a job record: {exc}") from exc
            if job.creation_time.astimezone(dt.UTC).date() == day:
                found.append(job)
        return found


def most_expensive(jobs: Sequence[Job], limit: int) -> list[Job]:
    """The ``limit`` jobs that billed most (unknown bytes last), newest first on ties.

    Example:
        >>> t = dt.datetime(2026, 12, 6, tzinfo=dt.UTC)
        >>> js = [Job(job_id=i, creation_time=t, query="x", total_bytes_billed=b)
        ...       for i, b in (("a", 5), ("b", None), ("c", 9))]
        >>> [j.job_id for j in most_expensive(js, 2)]
        ['c', 'a']
    """
    ranked = sorted(
        jobs,
        key=lambda j: (
            j.total_bytes_billed is not None,
            j.total_bytes_billed or 0,
            j.creation_time,
        ),
        reverse=True,
    )
    return ranked[:limit]
