"""Submit once: is a job of this name already alive on the Flink cluster?

The Kubernetes Job that submits the pipeline may run its pod again (a spot node reclaimed after
the submission, a retried pod). A second submission would start a second copy of the pipeline
on the same subscription - two readers splitting the messages, each with its own dedup state. So
with ``--submit_once`` the job first asks Flink's REST API (``GET /jobs/overview``) for a job of
the same ``--job_name`` in a non-terminal state and does not submit when there is one.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterable, Mapping
from typing import Any

from apache_beam.options.pipeline_options import (
    FlinkRunnerOptions,
    GoogleCloudOptions,
    PipelineOptions,
)

# Flink's JobStatus values that end a job for good; every other state (INITIALIZING, CREATED,
# RUNNING, FAILING, CANCELLING, RESTARTING, RECONCILING, SUSPENDED - the last one is a job the
# next JobManager leader recovers from HA storage) still owns the subscription.
TERMINAL_STATES = frozenset({"FINISHED", "CANCELED", "FAILED"})
_TIMEOUT_S = 10


def live_job(overview: Mapping[str, Any], name: str) -> tuple[str, str] | None:
    """``(jid, state)`` of a non-terminal job called ``name`` in a ``/jobs/overview`` answer.

    Example:
        >>> live_job({"jobs": [{"jid": "a1", "name": "edp", "state": "FAILED"},
        ...                    {"jid": "b2", "name": "edp", "state": "RESTARTING"}]}, "edp")
        ('b2', 'RESTARTING')
        >>> live_job({"jobs": []}, "edp") is None
        True
    """
    jobs: Iterable[Mapping[str, Any]] = overview.get("jobs") or []
    for job in jobs:
        if job.get("name") == name and job.get("state") not in TERMINAL_STATES:
            return str(job.get("jid")), str(job.get("state"))
    return None


def rest_url(flink_master: str) -> str:
    """``host:port`` (Beam's ``--flink_master``) or a URL -> the REST base URL.

    >>> rest_url("edp-stream-load-rest:8081")
    'http://edp-stream-load-rest:8081'
    """
    return flink_master if "://" in flink_master else f"http://{flink_master}"


def already_running(options: PipelineOptions) -> tuple[str, str] | None:
    """The live job with this ``--job_name`` on ``--flink_master``, or None.

    Raises:
        ValueError: ``--job_name`` or ``--flink_master`` missing (nothing to compare against).
        OSError: Flink's REST API cannot be reached - the submit fails and is retried, rather
            than submitting blind.
    """
    name = options.view_as(GoogleCloudOptions).job_name
    master = options.view_as(FlinkRunnerOptions).flink_master
    if not name or not master or master == "[auto]":
        raise ValueError("--submit_once needs --job_name and --flink_master")
    url = rest_url(master).rstrip("/") + "/jobs/overview"
    with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response:  # noqa: S310 - http(s)
        overview = json.load(response)
    return live_job(overview, name)
