"""The daily ETL as ``workflows/daily_etl.yaml`` runs it: the same HTTP calls, in the same order.

One call for the staging layer (the function runs its models in dependency order), then one
call per mart, in parallel (the workflow's ``parallel`` branches; the mart list comes from the
function's ``GET /models``), each retried on 429/5xx/connection errors with the workflow's
backoff (2 s doubling, 4 retries); any other failure posts ``/record-failure`` and stops, like
the workflow's ``except`` path. The Workflows emulator is not used here: it needs its own venv
(its pins conflict with ours) and takes longer to start than the whole ETL runs.
"""

from __future__ import annotations

import datetime as dt
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from edp.errors import EdpError


class EtlCallError(EdpError):
    """The etl function failed a call (after the workflow's retries)."""


@dataclass
class EtlCall:
    """One call of the etl function, measured by the caller."""

    target: str
    status: int
    seconds: float
    attempts: int
    reply: dict[str, Any] = field(default_factory=dict)


@dataclass
class EtlOutcome:
    """The whole workflow run."""

    run_date: dt.date
    lookback_days: int
    execution_id: str
    calls: list[EtlCall] = field(default_factory=list)
    seconds: float = 0.0
    mode: str = "calls"

    @property
    def rows_written(self) -> int:
        return sum(int(c.reply.get("rows_written", 0)) for c in self.calls)


def _post(url: str, body: dict[str, Any], target: str, timeout_s: float) -> EtlCall:
    import httpx

    started = time.perf_counter()
    delay = 2.0
    for attempt in range(1, 6):
        try:
            response = httpx.post(url, json=body, timeout=timeout_s)
            status = response.status_code
        except httpx.TransportError:
            status = 0
        if status == 200:
            return EtlCall(target, status, time.perf_counter() - started, attempt, response.json())
        if (status in (0, 429) or status >= 500) and attempt < 5:
            time.sleep(delay)
            delay = min(delay * 2, 60.0)
            continue
        detail = response.text[:500] if status else "connection failed"
        raise EtlCallError(f"etl {target}: HTTP {status}: {detail}")
    raise EtlCallError(f"etl {target}: retries exhausted")  # pragma: no cover - loop returns


def run_daily_etl(
    url: str,
    run_date: dt.date,
    *,
    lookback_days: int,
    execution_id: str,
    timeout_s: float = 1800.0,
) -> EtlOutcome:
    """Run the daily ETL for ``run_date`` (and ``lookback_days`` before) over HTTP.

    Raises:
        EtlCallError: A call failed for good (the failure is recorded first, as the workflow
            does).
    """
    import httpx

    url = url.rstrip("/")
    outcome = EtlOutcome(run_date, lookback_days, execution_id)
    base = {
        "date": run_date.isoformat(),
        "execution_id": execution_id,
        "lookback_days": lookback_days,
    }
    started = time.perf_counter()
    stage = "staging"
    try:
        outcome.calls.append(_post(url, {**base, "layer": "staging"}, "staging", timeout_s))
        stage = "mart"
        models = httpx.get(f"{url}/models", timeout=30).json()
        for wave in models["mart"]["waves"]:  # one wave today: every mart reads staging only
            with ThreadPoolExecutor(max_workers=len(wave)) as pool:
                outcome.calls.extend(
                    pool.map(lambda ref: _post(url, {**base, "model": ref}, ref, timeout_s), wave)
                )
    except EtlCallError as exc:
        httpx.post(
            f"{url}/record-failure",
            json={
                "date": base["date"],
                "layer": stage,
                "error": str(exc),
                "execution_id": execution_id,
            },
            timeout=60,
        )
        raise
    outcome.seconds = time.perf_counter() - started
    return outcome
