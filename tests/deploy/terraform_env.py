"""The environment Terraform gives each Cloud Run function, evaluated from terraform/ itself.

``module "function"`` in 06-functions.tf sets
``merge(local.common_env, each.value.env, var.functions[each.key].extra_environment)`` plus
``secret_environment = each.value.secrets``. This module evaluates those expressions for one
function with the variables' defaults and a tfvars-like dict, supporting exactly the expression
forms the files use (``var.a.b``, ``local.a.b``, ``tostring()``, ``join()``, literals), and
fails on anything else, so a new form is noticed instead of guessed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from infra.hcl import ROOT, _locals, _unq, _variable_defaults

_CALL = re.compile(r"^(\w+)\((.*)\)$", re.S)


class Evaluator:
    def __init__(self, tfvars: dict[str, Any]) -> None:
        self.defaults = _variable_defaults()
        self.tfvars = tfvars
        self.locals = _locals()

    def value(self, raw: Any) -> Any:
        """An HCL attribute value as python-hcl2 returns it."""
        if isinstance(raw, list):
            return [self.value(v) for v in raw]
        if isinstance(raw, int | float | bool):
            return raw
        text = str(raw)
        if text.startswith("${") and text.endswith("}"):
            return self.expr(text[2:-1].strip())
        return _unq(text)

    def expr(self, text: str) -> Any:
        if text.startswith('"') and text.endswith('"'):
            return text[1:-1]
        call = _CALL.match(text)
        if call:
            fn, args = call.group(1), call.group(2)
            if fn == "tostring":
                return str(self.expr(args.strip()))
            join = re.match(r'^"((?:[^"\\]|\\.)*)"\s*,\s*(.+)$', args.strip(), re.S)
            if fn == "join" and join:
                return join.group(1).join(str(v) for v in self.expr(join.group(2)))
            raise AssertionError(f"unsupported Terraform function in env: {text}")
        if text.startswith("var."):
            return self._var(text.removeprefix("var."))
        if text == "local.cdc_tables":
            return cdc_tables()
        if text.startswith("local."):
            node: Any = self.locals
            for part in text.removeprefix("local.").split("."):
                node = node[part]
            return self.value(node)
        raise AssertionError(f"unsupported Terraform expression in env: {text}")

    def _var(self, path: str) -> Any:
        if path in self.tfvars:
            return self.tfvars[path]
        if path not in self.defaults:
            raise AssertionError(f"var.{path} has no default: pass it in tfvars")
        return self.value(self.defaults[path])


def cdc_tables() -> list[str]:
    """``local.cdc_tables`` of 00-project.tf: the sorted ``cdc_source`` of every table YAML."""
    found = []
    for path in sorted((ROOT / "schemas" / "tables").glob("*/*.yaml")):
        source = yaml.safe_load(path.read_text(encoding="utf-8")).get("cdc_source")
        if source:
            found.append(source)
    return sorted(found)


def function_env(function: str, tfvars: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """(plain environment, {env var: secret name}) Terraform gives ``function``."""
    ev = Evaluator(tfvars)
    spec = ev.locals["functions"][function]
    env: dict[str, str] = {}
    for source in (ev.locals["common_env"], spec.get("env") or {}):
        env.update({name: str(ev.value(v)) for name, v in source.items()})
    extra = ev.defaults.get("functions", {}).get(function, {}).get("extra_environment", {})
    env.update({k: str(ev.value(v)) for k, v in (extra or {}).items()})
    secrets = {}
    for name, ref in (spec.get("secrets") or {}).items():
        match = re.search(r'secret\["([\w-]+)"\]', str(ref))
        assert match, f"{function}: secret env {name} is not a managed secret"
        secrets[name] = match.group(1)
    return env, secrets


def functions_dir() -> Path:
    return ROOT / "functions"
