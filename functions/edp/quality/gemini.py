"""Incident reports by Gemini on Vertex AI (``google-genai``), with the offline analyst as fallback.

One ``generate_content`` call per incident: the evidence as JSON in the prompt, an e-commerce
data engineer's system prompt, temperature 0.1, structured output with
:class:`~edp.quality.report.IncidentReport` as ``response_schema`` (so ``response.parsed`` is
the model). Any failure — no credentials, timeout, HTTP error, a refusal (no candidate text,
``finishReason`` SAFETY), an answer that does not parse into the model — falls back to
:func:`edp.quality.analyst.rule_based_report`, which says in ``author`` why.

The endpoint can be overridden with ``EDP_QUALITY_LLM_BASE_URL`` (a private endpoint, or the
local stand-in the tests run).
"""

from __future__ import annotations

import logging
import time
from functools import cache
from typing import Any

from edp.quality.analyst import rule_based_report
from edp.quality.report import Evidence, IncidentReport
from edp.settings import Settings

log = logging.getLogger(__name__)

SYSTEM_PROMPT = (
    "You are a senior data engineer on call for an e-commerce platform (behaviour events from "
    "web and mobile apps, orders/inventory/shipping captured from PostgreSQL by CDC, a BigQuery "
    "warehouse with raw, staging and mart layers, and a daily ETL). A data-quality check run "
    "found an anomaly. From the evidence only, write an incident report: what happened, the "
    "likely root causes ranked most likely first (promotion? outage? source system? pipeline?), "
    "each with the evidence it rests on, the business impact with numbers, immediate actions "
    "for the on-call engineer, and long-term fixes. Do not invent numbers that are not in or "
    "derivable from the evidence. Say how confident you are (0-1)."
)
TEMPERATURE = 0.1


class ReportUnavailableError(Exception):
    """Gemini gave no usable report (the reason is the message)."""


def _client(settings: Settings, credentials: Any | None) -> Any:
    from google import genai
    from google.genai import types

    options = types.HttpOptions(
        timeout=int(settings.quality_llm_timeout_s * 1000),
        retry_options=types.HttpRetryOptions(attempts=1),
    )
    if settings.quality_llm_base_url:
        options.base_url = settings.quality_llm_base_url
    return genai.Client(
        vertexai=True,
        project=settings.project,
        location=settings.quality_llm_location,
        credentials=credentials,
        http_options=options,
    )


def gemini_report(
    evidence: Evidence, settings: Settings, credentials: Any | None = None
) -> IncidentReport:
    """Ask Gemini; raises :class:`ReportUnavailableError` (with the reason) for no report."""
    from google.genai import types

    try:
        client = _client(settings, credentials)
        response = client.models.generate_content(
            model=settings.quality_llm_model,
            contents="Evidence (JSON):\n" + evidence.model_dump_json(indent=1),
            config=types.GenerateContentConfig(
                system_instruction=SYSTEM_PROMPT,
                temperature=TEMPERATURE,
                response_mime_type="application/json",
                response_schema=IncidentReport,
            ),
        )
    except Exception as exc:  # transport, auth, timeout, HTTP status: all mean "no report"
        raise ReportUnavailableError(f"{type(exc).__name__}: {str(exc)[:200]}") from exc
    parsed = response.parsed
    if not isinstance(parsed, IncidentReport):
        reason = "no answer"
        candidates = response.candidates or []
        finish = candidates[0].finish_reason if candidates else None
        if finish is not None and finish != types.FinishReason.STOP:
            reason = f"finish reason {finish.value}"  # a refusal (SAFETY, ...) or a cut answer
        elif response.text:
            reason = "answer does not match the report schema"
        raise ReportUnavailableError(reason)
    return parsed.model_copy(update={"author": f"gemini ({settings.quality_llm_model}, Vertex AI)"})


def write_report(
    evidence: Evidence, settings: Settings, credentials: Any | None = None
) -> IncidentReport:
    """Gemini's report when configured and it answers; else the offline analyst's."""
    calls, latency = _llm_instruments()
    model = settings.quality_llm_model
    if settings.quality_llm != "vertex":
        calls.add(1, {"model": model, "result": "offline"})
        return rule_based_report(evidence, "Vertex AI not configured")
    started = time.perf_counter()
    try:
        report = gemini_report(evidence, settings, credentials)
        calls.add(1, {"model": model, "result": "ok"})
        return report
    except ReportUnavailableError as exc:
        calls.add(1, {"model": model, "result": "error"})
        log.warning("quality: Gemini report unavailable, offline analyst used: %s", exc)
        return rule_based_report(evidence, f"Gemini unavailable: {exc}")
    finally:
        latency.record(time.perf_counter() - started, {"model": model})


@cache
def _llm_instruments() -> tuple[Any, Any]:
    from edp.observability.catalogue import instrument
    from edp.observability.metrics import get_meter

    meter = get_meter("edp.quality.gemini")
    return instrument(meter, "llm_calls_total"), instrument(meter, "llm_call_latency_seconds")
