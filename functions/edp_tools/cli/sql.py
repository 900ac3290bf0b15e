"""``edp sql review PATH|-``: the SQL cost reviewer on files, folders or stdin.

Registered in ``edp_tools.cli.main`` as ``app.add_typer(sql.app, name="sql")``::

    edp sql review functions/edp/etl/models          # every .sql under a folder
    edp sql review query.sql --runs-per-day 24       # price the saving per day
    cat query.sql | edp sql review -                 # stdin
    edp sql review models --ci --sarif review.sarif  # CI: exit 1 on error-level findings

Bytes come from the local DuckDB warehouse's dry-run estimate when its file exists (else
findings are listed unpriced); exact rewrites are shown only when proven equal on its data.
``--gemini`` also asks Gemini for rewrites of the other findings, kept only when proven equal.
Exit codes: 0 ok, 1 error-level findings in ``--ci`` mode, 2 a file does not parse or
cannot be read.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from edp.settings import get_settings
from edp.sqlreview.context import Pricing, RuleContext
from edp.sqlreview.estimators import DryRunEstimator, referenced_catalog_tables, row_counts
from edp.sqlreview.model import Finding, Review
from edp.sqlreview.reviewer import review, script_text
from edp.sqlreview.rewrites import Verifier, verify_rewrites
from edp.sqlreview.rules import ALL_RULES
from edp.sqlreview.sarif import sarif_log
from edp.sqlreview.source import Source, SqlSyntaxError
from edp.warehouse.port import Warehouse

app = typer.Typer(help="SQL cost review: antipatterns and BigQuery cost rules, priced.")


def _files(paths: list[str]) -> list[tuple[str, str]]:
    """``(display name, text)`` of every SQL input."""
    found: list[tuple[str, str]] = []
    for raw in paths:
        if raw == "-":
            found.append(("<stdin>", sys.stdin.read()))
            continue
        path = Path(raw)
        targets = sorted(path.rglob("*.sql")) if path.is_dir() else [path]
        for target in targets:
            found.append((str(target), target.read_text(encoding="utf-8")))
    return found


def _line(name: str, finding: Finding) -> str:
    cost = ""
    if finding.bytes_before is not None:
        after = finding.bytes_after if finding.bytes_after is not None else finding.bytes_before
        cost = f" [{finding.bytes_before / 2**20:,.0f} -> {after / 2**20:,.0f} MiB"
        cost += f", ${finding.usd_per_day:,.2f}/day]" if finding.usd_per_day else "]"
    mark = f" (suppressed: {finding.suppressed})" if finding.suppressed else ""
    return (
        f"{name}:{finding.line}:{finding.column}: {finding.severity} "
        f"{finding.rule}: {finding.message}{cost}{mark}"
    )


def _local_warehouse() -> Warehouse | None:
    settings = get_settings()
    if settings.warehouse != "duckdb" or not settings.duckdb_file.exists():
        return None
    from edp_tools.warehouse.duckdb_adapter import DuckDBWarehouse

    return DuckDBWarehouse(
        settings.duckdb_file, settings=settings, read_only=True, estimate_bytes="never"
    )


def _report(
    results: list[tuple[str, Review]], *, files: int, as_json: bool, sarif: Path | None
) -> None:
    pairs = [(name, f) for name, r in results for f in r.findings]
    if as_json:
        typer.echo(json.dumps([{"file": n, **f.model_dump(mode="json")} for n, f in pairs]))
    else:
        for name, finding in pairs:
            typer.echo(_line(name, finding))
        errors = sum(r.has_errors() for _, r in results)
        typer.echo(f"sql review: {len(pairs)} finding(s) in {files} file(s), {errors} with errors")
    if sarif is not None:
        log = sarif_log(pairs, rule_names=list(ALL_RULES))
        sarif.write_text(json.dumps(log, indent=2), encoding="utf-8")


def _gemini(review_: Review, source: Source, verifier: Verifier, params: dict[str, Any]) -> Review:
    from google import genai

    from edp_tools.sqlreview.gemini import with_gemini_rewrites

    settings = get_settings()
    client = genai.Client(vertexai=True, project=settings.project, location=settings.region)
    return with_gemini_rewrites(review_, source, client, verifier, params=params)


@app.command("review")
def review_command(
    paths: Annotated[list[str], typer.Argument(help="SQL files, folders, or - for stdin.")],
    *,
    ci: Annotated[bool, typer.Option("--ci", help="Exit 1 on error-level findings.")] = False,
    sarif: Annotated[
        Path | None, typer.Option("--sarif", help="Write SARIF 2.1.0 annotations here.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print findings as JSON.")] = False,
    params: Annotated[
        str, typer.Option("--params", help='Query parameters as JSON, e.g. {"day": "2026-12-01"}.')
    ] = "{}",
    runs_per_day: Annotated[
        float | None, typer.Option("--runs-per-day", help="How often the SQL runs (per-day $).")
    ] = None,
    gemini: Annotated[
        bool,
        typer.Option(
            "--gemini",
            help="Ask Gemini (Vertex AI, settings' project/region) for rewrites of the other "
            "findings; shown only when proven equal on the local warehouse's data.",
        ),
    ] = False,
) -> None:
    """Review SQL files; print findings (``path:line:col: severity Rule: message``)."""
    try:
        bound: dict[str, Any] = json.loads(params)
        inputs = _files(paths)
    except (OSError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    warehouse = _local_warehouse()
    verifier: Verifier | None = None
    if warehouse is not None:
        from edp_tools.sqlreview.equivalence import DuckDBVerifier

        verifier = DuckDBVerifier(warehouse)
    settings = get_settings()
    results: list[tuple[str, Review]] = []
    failed = False
    try:
        for name, text in inputs:
            try:
                source = Source.parse(script_text(text, checks=name.endswith(".checks.sql")))
            except SqlSyntaxError as exc:
                typer.echo(f"{name}: error: {exc}", err=True)
                failed = True
                continue
            counts = (
                row_counts(warehouse, referenced_catalog_tables(source.statements))
                if warehouse
                else {}
            )
            ctx = RuleContext(
                source=source,
                estimator=DryRunEstimator(warehouse, bound) if warehouse else None,
                row_counts=counts,
                pricing=Pricing(settings.sql_review_usd_per_tib, runs_per_day),
                params=bound,
            )
            checked = verify_rewrites(review(ctx), source, verifier, bound)
            if gemini and verifier is not None:
                checked = _gemini(checked, source, verifier, bound)
            results.append((name, checked))
    finally:
        if warehouse is not None:
            warehouse.close()
    _report(results, files=len(inputs), as_json=as_json, sarif=sarif)
    if failed:
        raise typer.Exit(2)
    if ci and any(r.has_errors() for _, r in results):
        raise typer.Exit(1)
