"""The incident report: one pydantic model, written by Gemini or by the offline analyst.

Both authors fill :class:`IncidentReport` from the same :class:`Evidence`; ``author`` says which
one wrote it (and, for the offline analyst, why Gemini did not).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class LikelyCause(BaseModel):
    """One candidate root cause, with the evidence it rests on."""

    cause: str = Field(description="The suspected root cause, one sentence.")
    likelihood: float = Field(ge=0, le=1, description="Probability this is the cause (0-1).")
    evidence: list[str] = Field(description="Facts from the evidence that support it.")


class ImpactFigure(BaseModel):
    """One number of business impact."""

    name: str = Field(description="What is measured, e.g. events missing in the window.")
    value: float
    unit: str = Field(description="events, orders, KRW, %, minutes, rows ...")


class BusinessImpact(BaseModel):
    """What the incident costs the business."""

    summary: str = Field(description="One or two sentences for a business reader.")
    figures: list[ImpactFigure] = Field(description="The numbers behind the summary.")


class IncidentReport(BaseModel):
    """A data-quality incident report (the structured-output schema given to Gemini)."""

    model_config = ConfigDict(extra="ignore")

    summary: str = Field(description="What happened, where, since when: two sentences at most.")
    likely_causes: list[LikelyCause] = Field(
        description="Candidate root causes, most likely first."
    )
    business_impact: BusinessImpact
    immediate_actions: list[str] = Field(description="What the on-call engineer does now.")
    long_term_fixes: list[str] = Field(description="What prevents a repeat.")
    confidence: float = Field(ge=0, le=1, description="Confidence in the diagnosis (0-1).")
    author: str = Field(
        "", description="Leave empty: filled in by the platform with who wrote the report."
    )


class CheckEvidence(BaseModel):
    """A failing check as the analysts see it."""

    check_name: str
    check_type: str
    table: str
    column: str | None = None
    status: str
    severity: str
    value: float | None = None
    expected: float | None = None
    threshold: float | None = None
    score: float | None = None
    window: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class Evidence(BaseModel):
    """Everything an analyst gets about one incident."""

    group: str
    run_time: str
    failing: list[CheckEvidence]
    other_checks: dict[str, int] = Field(
        default_factory=dict, description="Status counts of the run's other checks."
    )
    volume_series: dict[str, list[float]] = Field(
        default_factory=dict, description="Per table: the window's value and seasonal samples."
    )
    related: dict[str, float] = Field(
        default_factory=dict,
        description="Related tables over the window: purchase events vs CDC orders, refusals.",
    )
    recent_runs: list[dict[str, Any]] = Field(
        default_factory=list, description="Recent ETL / flush runs that failed."
    )
    promotions: list[str] = Field(default_factory=list, description="Promotions active now.")
