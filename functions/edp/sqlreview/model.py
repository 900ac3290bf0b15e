"""What a review returns: findings, each priced, and the review as a whole.

Example:
    >>> f = Finding(rule="OrderByWithoutLimit", severity="info", line=5, column=1,
    ...             message="ORDER BY clause without LIMIT at line 5.")
    >>> f.reference_text()
    'OrderByWithoutLimit: ORDER BY clause without LIMIT at line 5.'
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Severity = Literal["info", "warning", "error"]
SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "error": 2}


class Rewrite(BaseModel):
    """A suggested rewrite of one statement, built on the AST."""

    model_config = ConfigDict(frozen=True)

    sql: str = Field(description="The rewritten statement (BigQuery dialect).")
    exact: bool = Field(description="True: same result by construction; False: approximate.")
    note: str = Field("", description="What changes, e.g. the error bound of an approximation.")
    verified: bool | None = Field(
        None,
        description="Result of the equivalence check on sample data: True identical, False "
        "different (the rewrite is then withheld), None not checked.",
    )


class Finding(BaseModel):
    """One antipattern or cost problem, where it is, and what fixing it saves."""

    model_config = ConfigDict(frozen=True)

    rule: str
    severity: Severity
    line: int = Field(ge=1)
    column: int = Field(ge=1)
    message: str
    statement: int = Field(0, ge=0, description="0-based index of the statement in the script.")
    bytes_before: int | None = Field(None, description="Bytes billed by the statement as is.")
    bytes_after: int | None = Field(None, description="Bytes billed after the suggested fix.")
    usd_before: float | None = None
    usd_after: float | None = None
    usd_per_day: float | None = Field(
        None, description="Saving per day at the statement's known frequency."
    )
    rewrite: Rewrite | None = None
    suppressed: str | None = Field(None, description="Reason of an inline suppression.")

    def reference_text(self) -> str:
        """``<NAME>: <message>``, the reference tool's output line."""
        return f"{self.rule}: {self.message}"


class StatementCost(BaseModel):
    """What one statement of the script is estimated to bill."""

    model_config = ConfigDict(frozen=True)

    statement: int
    bytes_billed: int | None
    usd: float | None
    source: Literal["dry_run", "statistics", "none"]


class Review(BaseModel):
    """The findings of one submitted text, in rule order."""

    model_config = ConfigDict(frozen=True)

    findings: tuple[Finding, ...]
    costs: tuple[StatementCost, ...] = ()

    @property
    def active(self) -> tuple[Finding, ...]:
        """Findings not suppressed inline."""
        return tuple(f for f in self.findings if f.suppressed is None)

    def has_errors(self) -> bool:
        return any(f.severity == "error" for f in self.active)

    def reference_lines(self) -> list[str]:
        """The reference tool's output: ``NAME: message`` per finding, duplicates removed."""
        seen: dict[str, None] = {}
        for finding in self.active:
            seen.setdefault(finding.reference_text(), None)
        return list(seen)
