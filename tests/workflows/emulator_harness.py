"""Run or validate a Cloud Workflows YAML with the ``workflows-emulator`` package.

Executed by the isolated venv's Python (``.nox/workflows``), never imported by the main test
suite: workflows-emulator pins an old fastapi/starlette that conflicts with functions-framework.

    python emulator_harness.py validate WORKFLOW.yaml
    python emulator_harness.py run WORKFLOW.yaml '{"date": "2026-11-25"}'

Prints one JSON line on stdout: ``{"status": "valid"|"invalid"|"succeeded"|"failed", ...}``.

Emulator quirks handled here (DESIGN.md): it has no OIDC, so every ``auth:`` block is removed
before running (the validation sees the file as deployed, auth included); it binds ``main``'s
parameters by name, so the execution argument is passed as ``{"args": argument}`` (Cloud
Workflows binds the whole argument to the single parameter); and it renders an expression whose
value is one of its own map objects (an error ``e``, say) through ``str()`` and re-reads that as
YAML, which breaks on any quote in an error message, so such values are handed back as plain
JSON-ready dicts. The caller runs this with a timeout because the emulator can hang on a failing
``assign``.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import workflows_emulator.main as emulator_main
import workflows_emulator.render as emulator_render
import yaml
from jsonschema import Draft7Validator
from workflows_emulator.main import WORKFLOW_SCHEMA, execute_workflow
from workflows_emulator.utils import WorkflowError

_run_code = emulator_render.run_code


def _run_code_plain(code: str, context: dict[str, Any]) -> Any:
    """The emulator's expression evaluation, with its map subclasses turned into plain dicts."""
    value = _run_code(code, context)
    if isinstance(value, dict) and type(value) is not dict:
        return json.loads(json.dumps(value, default=str))
    return value


emulator_render.run_code = _run_code_plain
emulator_main.run_code = _run_code_plain


def strip_auth(node: Any) -> Any:
    """The workflow without ``auth:`` keys (the emulator raises NotImplementedError on OIDC)."""
    if isinstance(node, dict):
        return {k: strip_auth(v) for k, v in node.items() if k != "auth"}
    if isinstance(node, list):
        return [strip_auth(v) for v in node]
    return node


def validate(workflow: Any) -> list[str]:
    """Every schema violation, as 'path: message' (empty when valid)."""
    validator = Draft7Validator(WORKFLOW_SCHEMA)
    return [
        f"{'/'.join(str(p) for p in err.absolute_path)}: {err.message[:300]}"
        for err in sorted(validator.iter_errors(workflow), key=lambda e: list(e.absolute_path))
    ]


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    command, path = argv[1], argv[2]
    with open(path, encoding="utf-8") as handle:
        workflow = yaml.safe_load(handle)
    if command == "validate":
        errors = validate(workflow)
        print(json.dumps({"status": "invalid" if errors else "valid", "errors": errors}))
        return 0
    argument = json.loads(argv[3]) if len(argv) > 3 else None
    try:
        result = execute_workflow(strip_auth(workflow), {"args": argument})
    except WorkflowError as err:
        print(json.dumps({"status": "failed", "error": _plain(err.payload)}))
        return 0
    print(json.dumps({"status": "succeeded", "result": _plain(result)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
