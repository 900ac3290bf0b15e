"""What Terraform and the Workflows YAML say about a pipeline: trigger, schedule, retries, alerts.

``terraform/*.tf`` is parsed with python-hcl2 (nothing is planned): the Cloud Run functions of
``06-functions.tf`` (``local.functions``), the Cloud Scheduler jobs and workflows of
``07-workflows.tf`` (a job's target names the function or workflow it starts; ``var.*`` resolve
to the variables' defaults), and the alert policies of ``09-monitoring.tf`` (``local.alerts``).
``workflows/*.yaml`` gives each workflow's header comment and its calls' retry policies.

Example:
    >>> facts = read_infra(Path(__file__).resolve().parents[3])
    >>> facts.functions["etl"].entry_point
    'etl'
    >>> [job.schedule for job in facts.jobs if job.target == "workflow:daily_etl"]
    ['0 3 * * *']
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["Alert", "Function", "InfraFacts", "Job", "Retry", "Workflow", "read_infra", "unquote"]

_INTERPOLATION = re.compile(
    r"\$\{var\.(?P<name>[a-z0-9_]+(?:\.[a-z0-9_]+)?)(?:\s*\*\s*(?P<factor>[0-9.]+))?\}"
)
_OPTIONAL = re.compile(r"(?P<field>[a-z0-9_]+)\s*=\s*optional\([a-z]+,\s*(?P<default>[^)]+)\)")


def unquote(value: object) -> str:
    """An HCL string as python-hcl2 returns it, without its quotes and escapes.

    Example:
        >>> unquote('"a \\\\"b\\\\""')
        'a "b"'
    """
    text = str(value)
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    return text.replace('\\"', '"')


@dataclass(frozen=True)
class Function:
    """A Cloud Run function of ``local.functions``."""

    key: str
    entry_point: str
    description: str
    ingress: str
    invokers: tuple[str, ...]
    env: dict[str, str]


@dataclass(frozen=True)
class Job:
    """A Cloud Scheduler job: ``target`` is ``function:<key>`` or ``workflow:<name>``."""

    name: str
    description: str
    schedule: str
    time_zone: str
    target: str
    retry: str


@dataclass(frozen=True)
class Retry:
    """A Workflows ``retry`` block of one subworkflow."""

    subworkflow: str
    predicate: str
    max_retries: int
    backoff: str


@dataclass(frozen=True)
class Workflow:
    """A Cloud Workflows workflow: its Terraform name, source file and what it calls."""

    name: str
    description: str
    source: str
    functions: tuple[str, ...]
    header: str
    retries: tuple[Retry, ...]


@dataclass(frozen=True)
class Alert:
    """An alert policy of ``local.alerts``."""

    key: str
    severity: str
    duration: str
    doc: str
    query: str


@dataclass(frozen=True)
class InfraFacts:
    functions: dict[str, Function]
    jobs: tuple[Job, ...]
    workflows: dict[str, Workflow]
    alerts: tuple[Alert, ...]


def _load_tf(root: Path) -> list[dict[str, Any]]:
    import hcl2  # tooling-only dependency (the dev extra): imported when docs are built

    docs = []
    for path in sorted((root / "terraform").glob("*.tf")):
        with path.open(encoding="utf-8") as handle:
            docs.append(hcl2.load(handle))
    return docs


def _variables(docs: list[dict[str, Any]]) -> dict[str, str]:
    found: dict[str, str] = {}
    for doc in docs:
        for block in doc.get("variable", []):
            for name, body in block.items():
                if "default" in body and isinstance(body["default"], str | int | float):
                    found[unquote(name)] = unquote(body["default"])
                # object variables: the defaults of their optional(type, default) attributes
                for match in _OPTIONAL.finditer(str(body.get("type", ""))):
                    field = f"{unquote(name)}.{match.group('field')}"
                    found[field] = unquote(match.group("default").strip())
    return found


def _resolve(value: object, variables: dict[str, str]) -> str:
    """An HCL string with ``${var.x}``, ``${var.x.y}`` and ``${var.x.y * n}`` replaced by the
    variables' defaults (anything else is left as written).

    Example:
        >>> _resolve('"over ${var.a.rate * 100} % for ${var.d} min"', {"a.rate": "0.05", "d": "5"})
        'over 5 % for 5 min'
    """
    text = unquote(value)

    def one(match: re.Match[str]) -> str:
        default = variables.get(match.group("name"))
        if default is None:
            return match.group(0)
        if match.group("factor") is None:
            return default
        try:
            return f"{float(default) * float(match.group('factor')):g}"
        except ValueError:
            return match.group(0)

    return _INTERPOLATION.sub(one, text)


def _resources(docs: list[dict[str, Any]], kind: str) -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    for doc in docs:
        for block in doc.get("resource", []):
            for rtype, named in block.items():
                if unquote(rtype) == kind:
                    found.extend((unquote(name), body) for name, body in named.items())
    return found


def _local(docs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    for doc in docs:
        for block in doc.get("locals", []):
            if name in block:
                value = block[name]
                return value if isinstance(value, dict) else {}
    return {}


def _target(text: str) -> str:
    function = re.search(r'module\.function\[\\?"([a-z_]+)\\?"\]', text)
    if function:
        return f"function:{function.group(1)}"
    workflow = re.search(r"google_workflows_workflow\.([a-z_]+)", text)
    return f"workflow:{workflow.group(1)}" if workflow else ""


def _retries(source: Path) -> tuple[str, tuple[Retry, ...]]:
    text = source.read_text(encoding="utf-8")
    header = "\n".join(
        line[1:].strip() for line in text.split("\n\n", 1)[0].splitlines() if line.startswith("#")
    )
    retries: list[Retry] = []

    def walk(node: object, subworkflow: str) -> None:
        if isinstance(node, dict):
            retry = node.get("retry")
            if isinstance(retry, dict):
                backoff = retry.get("backoff", {})
                retries.append(
                    Retry(
                        subworkflow,
                        str(retry.get("predicate", "")),
                        int(retry.get("max_retries", 0)),
                        f"{backoff.get('initial_delay')} s x{backoff.get('multiplier')} "
                        f"up to {backoff.get('max_delay')} s",
                    )
                )
            for value in node.values():
                walk(value, subworkflow)
        elif isinstance(node, list):
            for value in node:
                walk(value, subworkflow)

    for name, body in (yaml.safe_load(text) or {}).items():
        walk(body, name)
    return header, tuple(retries)


def read_infra(root: Path) -> InfraFacts:
    """Read the Terraform root module and the workflows of the checkout at ``root``."""
    docs = _load_tf(root)
    variables = _variables(docs)
    functions = {
        key: Function(
            key=key,
            entry_point=unquote(body.get("entry_point", key)),
            description=unquote(body.get("description", "")),
            ingress=unquote(body.get("ingress", "")),
            invokers=tuple(
                unquote(m).removeprefix("${").removesuffix("}")
                for role, members in body.get("iam", {}).items()
                if unquote(role) == "roles/run.invoker"
                for m in members
            ),
            env={k: _resolve(v, variables) for k, v in body.get("env", {}).items()},
        )
        for key, body in _local(docs, "functions").items()
    }
    jobs = []
    for name, body in _resources(docs, "google_cloud_scheduler_job"):
        retry = (body.get("retry_config") or [{}])[0]
        count = retry.get("retry_count", 0)
        backoff = (
            f", backoff {unquote(retry['min_backoff_duration'])} -> "
            f"{unquote(retry['max_backoff_duration'])}"
            if "min_backoff_duration" in retry
            else ""
        )
        target = (body.get("http_target") or [{}])[0]
        jobs.append(
            Job(
                name=name,
                description=unquote(body.get("description", "")),
                schedule=_resolve(body.get("schedule", ""), variables),
                time_zone=_resolve(body.get("time_zone", "Etc/UTC"), variables),
                target=_target(str(target.get("uri", ""))),
                retry=f"{count} retries{backoff}",
            )
        )
    workflows = {}
    for name, body in _resources(docs, "google_workflows_workflow"):
        source_match = re.search(
            r"/\.\./(workflows/[A-Za-z0-9_.-]+)", str(body.get("source_contents"))
        )
        source = source_match.group(1) if source_match else ""
        header, retries = _retries(root / source) if source else ("", ())
        env = body.get("user_env_vars", {})
        called = tuple(sorted({t.split(":", 1)[1] for v in env.values() if (t := _target(str(v)))}))
        workflows[name] = Workflow(
            name, unquote(body.get("description", "")), source, called, header, retries
        )
    alerts = tuple(
        Alert(
            key=key,
            severity=unquote(body.get("severity", "")),
            duration=unquote(body.get("duration", "")),
            doc=_resolve(body.get("doc", ""), variables),
            query=unquote(body.get("query", "")),
        )
        for key, body in _local(docs, "alerts").items()
    )
    return InfraFacts(functions, tuple(jobs), workflows, alerts)
