"""Optional Gemini rewrites (``google-genai``), shown only once proven like the AST rewrites.

For a finding without an exact rewrite, Gemini (on Vertex AI with ``vertexai=True``, or any
``genai.Client``) is asked for an equivalent, cheaper statement as structured output
(:class:`GeminiRewrite`, ``response_schema``), at temperature 0.1. The answer is treated as
untrusted text: it must parse as BigQuery SQL and return the same rows as the original on the
sample data (:class:`edp_tools.sqlreview.equivalence.DuckDBVerifier`), else it is dropped.

Example:
    >>> from google import genai  # doctest: +SKIP
    >>> client = genai.Client(vertexai=True, project="p", location="us-central1")  # doctest: +SKIP
    >>> with_gemini_rewrites(review, source, client, verifier)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google import genai
from google.genai import errors as genai_errors
from google.genai import types
from pydantic import BaseModel, Field

from edp.sqlreview.model import Finding, Review, Rewrite
from edp.sqlreview.rewrites import Verifier
from edp.sqlreview.source import Source, SqlSyntaxError

MODEL = "gemini-2.5-flash"
SYSTEM = (
    "You are a BigQuery cost engineer. Rewrite the statement so it bills fewer bytes or "
    "fewer slots while returning exactly the same rows (same columns, same values, same "
    "multiset). Keep BigQuery Standard SQL, the same table names and @parameters. If no "
    "equivalent cheaper statement exists, return the statement unchanged."
)


class GeminiRewrite(BaseModel):
    """What Gemini answers."""

    sql: str = Field(description="The rewritten statement, BigQuery Standard SQL.")
    explanation: str = Field(description="One sentence: what changed and why it is cheaper.")


def ask(
    client: genai.Client, statement: str, finding: Finding, model: str = MODEL
) -> GeminiRewrite:
    """One structured-output call for one finding."""
    prompt = (
        f"Finding {finding.rule} at line {finding.line}: {finding.message}\n\n"
        f"Statement:\n{statement}"
    )
    response = client.models.generate_content(
        model=model,
        contents=prompt,
        config=types.GenerateContentConfig(
            system_instruction=SYSTEM,
            temperature=0.1,
            response_mime_type="application/json",
            response_schema=GeminiRewrite,
        ),
    )
    parsed = response.parsed
    if isinstance(parsed, GeminiRewrite):
        return parsed
    return GeminiRewrite.model_validate_json(response.text or "{}")


def with_gemini_rewrites(
    review: Review,
    source: Source,
    client: genai.Client,
    verifier: Verifier,
    *,
    params: Mapping[str, Any] | None = None,
    model: str = MODEL,
) -> Review:
    """``review`` where findings without a rewrite get Gemini's, when it is proven equal."""
    findings = []
    for finding in review.findings:
        if finding.rewrite is not None or finding.suppressed is not None:
            findings.append(finding)
            continue
        before = source.statements[finding.statement].sql(dialect="bigquery")
        try:
            answer = ask(client, before, finding, model)
            rewritten = Source.parse(answer.sql)
        except (genai_errors.APIError, SqlSyntaxError, ValueError):
            findings.append(finding)
            continue
        after = rewritten.statements[0].sql(dialect="bigquery")
        if len(rewritten.statements) != 1 or after == before:
            findings.append(finding)
            continue
        if not verifier(before, after, params or {}):
            findings.append(finding)
            continue
        rewrite = Rewrite(
            sql=after,
            exact=True,
            note=f"Gemini rewrite ({model}), proven equal on sample data: {answer.explanation}",
            verified=True,
        )
        findings.append(finding.model_copy(update={"rewrite": rewrite}))
    return review.model_copy(update={"findings": tuple(findings)})
