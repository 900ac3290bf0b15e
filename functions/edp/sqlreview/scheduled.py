"""The scheduled review: the day's most expensive query jobs, reviewed, priced, sent to Slack.

Cloud Scheduler calls the ``sql_review`` function once a day (``{"mode": "scheduled"}``); it
reads the day's jobs (``INFORMATION_SCHEMA.JOBS`` in production, the local query log locally),
reviews the ``top`` most expensive ones — each finding priced from what its job billed and
the job's frequency that day — looks for materialized-view candidates over all of them, and
posts one Slack message (a header, the day's totals, one section per costly finding, one per
view candidate).

Example:
    >>> import datetime as dt
    >>> from edp.sqlreview.history import Job
    >>> t = dt.datetime(2026, 12, 6, 3, tzinfo=dt.UTC)
    >>> job = Job(job_id="j1", creation_time=t, query="SELECT event_id FROM raw.user_events",
    ...           total_bytes_billed=400 * 2**30)
    >>> report = daily_review([job], dt.date(2026, 12, 6))
    >>> [f.rule for f in report.reviews[0].findings]
    ['MissingPartitionFilter']
    >>> report.reviews[0].findings[0].usd_before
    2.441406
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)
from sqlglot import exp

from edp.contracts.catalog import Catalog, load_catalog
from edp.sqlreview.context import BytesEstimator, Pricing, RuleContext
from edp.sqlreview.history import Job, most_expensive
from edp.sqlreview.materialized_views import Candidate, candidates
from edp.sqlreview.model import Finding
from edp.sqlreview.reviewer import review
from edp.sqlreview.source import Source, SqlSyntaxError

_MAX_FINDINGS_SHOWN = 20  # Slack allows 50 blocks per message


@dataclass(frozen=True)
class JobReview:
    """The findings of one job's query."""

    job: Job
    runs: int
    findings: tuple[Finding, ...]


@dataclass(frozen=True)
class DailyReport:
    """What the scheduled review found on one day."""

    day: dt.date
    jobs_seen: int
    bytes_billed: int
    reviews: tuple[JobReview, ...]
    views: tuple[Candidate, ...]

    @property
    def saving_bytes_per_day(self) -> int:
        """Bytes the findings' fixes would save that day (per-run saving x runs)."""
        return sum(
            (f.bytes_before - f.bytes_after) * item.runs
            for item in self.reviews
            for f in item.findings
            if f.bytes_before is not None and f.bytes_after is not None
        )


def _job_estimator(
    job: Job, statement: exp.Expression, fallback: BytesEstimator | None
) -> BytesEstimator:
    """What the job billed for its own statement; ``fallback`` (a dry run) for rewrites."""

    def estimate(candidate: exp.Expression) -> int | None:
        if candidate is statement and job.total_bytes_billed is not None:
            return job.total_bytes_billed
        return fallback(candidate) if fallback is not None else None

    return estimate


def daily_review(
    jobs: Sequence[Job],
    day: dt.date,
    *,
    top: int = 20,
    pricing: Pricing | None = None,
    catalog: Catalog | None = None,
    estimator: BytesEstimator | None = None,
    min_repeats: int = 3,
) -> DailyReport:
    """Review the ``top`` most expensive of ``jobs`` (one day's) and find view candidates.

    A job's query is priced at what the job billed; ``estimator`` (a dry run in production)
    prices the counterfactuals (a partition filter added, a rewrite). A query seen several
    times that day is reviewed once and its saving counted per run.
    """
    pricing = pricing or Pricing()
    catalog = catalog or load_catalog()
    runs = Counter(j.query for j in jobs)
    reviewed: dict[str, JobReview] = {}
    for job in most_expensive(jobs, top * 4):
        if job.query in reviewed or len(reviewed) >= top:
            continue
        try:
            source = Source.parse(job.query)
        except SqlSyntaxError:
            continue
        if len(source.statements) != 1:
            continue  # a script job's bytes cannot be split among its statements
        ctx = RuleContext(
            source=source,
            catalog=catalog,
            estimator=_job_estimator(job, source.statements[0], estimator),
            pricing=Pricing(usd_per_tib=pricing.usd_per_tib, runs_per_day=runs[job.query]),
            rewrites=False,
        )
        found = tuple(f for f in review(ctx).active if f.severity != "info")
        reviewed[job.query] = JobReview(job=job, runs=runs[job.query], findings=found)
    return DailyReport(
        day=day,
        jobs_seen=len(jobs),
        bytes_billed=sum(j.total_bytes_billed or 0 for j in jobs),
        reviews=tuple(r for r in reviewed.values() if r.findings),
        views=tuple(candidates(jobs, min_repeats=min_repeats, catalog=catalog)),
    )


def _usd(value: float | None) -> str:
    return "?" if value is None else f"${value:,.2f}"


def slack_message(report: DailyReport, pricing: Pricing) -> tuple[str, list[Block]]:
    """``(fallback text, blocks)`` of the report."""
    total = pricing.usd(report.bytes_billed)
    text = (
        f"SQL cost review {report.day}: {report.jobs_seen} jobs billed {_usd(total)}, "
        f"{sum(len(r.findings) for r in report.reviews)} findings, {len(report.views)} "
        "materialized-view candidates"
    )
    blocks: list[Block] = [
        HeaderBlock(text=f"SQL cost review — {report.day}"),
        SectionBlock(
            fields=[
                MarkdownTextObject(text=f"*Jobs*\n{report.jobs_seen}"),
                MarkdownTextObject(text=f"*Billed*\n{report.bytes_billed / 2**30:,.1f} GiB"),
                MarkdownTextObject(text=f"*Cost*\n{_usd(total)}"),
            ]
        ),
    ]
    shown = 0
    for item in report.reviews:
        for finding in item.findings:
            if shown >= _MAX_FINDINGS_SHOWN:
                break
            shown += 1
            line = (
                f"*{finding.rule}* ({finding.severity}) in job `{item.job.job_id}` "
                f"(ran {item.runs}x), line {finding.line}\n{finding.message[:1500]}\n"
                f"{_usd(finding.usd_before)} per run -> {_usd(finding.usd_after)}; "
                f"saves {_usd(finding.usd_per_day)}/day"
            )
            blocks.append(SectionBlock(text=MarkdownTextObject(text=line[:2900])))
    for view in report.views[:5]:
        line = (
            f"*Materialized view candidate* on `{view.table}` serving {len(view.job_ids)} jobs "
            f"({_usd(pricing.usd(view.bytes_before))} -> {_usd(pricing.usd(view.bytes_after))})"
            f"\n```{view.statement[:2400]}```"
        )
        blocks.append(SectionBlock(text=MarkdownTextObject(text=line[:2900])))
    blocks.append(
        ContextBlock(
            elements=[MarkdownTextObject(text=f"on-demand price ${pricing.usd_per_tib}/TiB")]
        )
    )
    return text, blocks
