"""Reading terraform/ without Terraform: HCL parsed with python-hcl2, plus the few expression
forms the root module uses (variable defaults, locals, role maps)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hcl2

ROOT = Path(__file__).resolve().parents[2]
TF = ROOT / "terraform"


# --- helpers ------------------------------------------------------------------------------------


def _tf_files() -> list[Path]:
    return sorted(p for p in TF.rglob("*.tf") if ".terraform" not in p.parts)


def _load(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        return hcl2.load(fh)  # type: ignore[no-any-return]


def _unq(value: str) -> str:
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value


def _blocks(kind: str, path: Path | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """(name, body) of every `variable`/`output`/... block in terraform/ (root module only)."""
    files = [path] if path else sorted(TF.glob("*.tf"))
    for file in files:
        for block in _load(file).get(kind, []):
            for name, body in block.items():
                yield _unq(name), body


def _locals() -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for file in sorted(TF.glob("*.tf")):
        for block in _load(file).get("locals", []):
            merged.update(block)
    return merged


def _text(value: Any) -> str:
    """An HCL value as text: expressions are strings already, object literals come as dicts."""
    return value if isinstance(value, str) else json.dumps(value).replace('\\"', '"')


def _resources(rtype: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for file in _tf_files():
        for block in _load(file).get("resource", []):
            for typ, named in block.items():
                if _unq(typ) == rtype:
                    for name, body in named.items():
                        found[_unq(name)] = body
    return found


def _variable_defaults() -> dict[str, Any]:
    """Defaults of root variables; object types expose their optional(type, default) values."""
    defaults: dict[str, Any] = {}
    for name, body in _blocks("variable", TF / "variables.tf"):
        if "default" in body:
            defaults[name] = body["default"]
        for attr, literal in re.findall(
            r'(\w+)\s*=\s*optional\(\w+,\s*("[^"]*"|[\d.]+)\)', str(body.get("type", ""))
        ):
            defaults[f"{name}.{attr}"] = json.loads(literal)
    return defaults


def _members(text: str) -> list[str]:
    """Workload keys named by local.sa.X / local.sa["X"] in an HCL expression."""
    return [a or b for a, b in re.findall(r'local\.sa(?:\["([\w-]+)"\]|\.([\w-]+))', _text(text))]


def _role_lists(text: Any) -> Iterator[tuple[str, list[str]]]:
    if isinstance(text, dict):
        for role, members in text.items():
            yield _unq(role), _members(" ".join(members))
        return
    for role, members in re.findall(
        r'"(roles/[\w.]+)"\s*(?:=|:)\s*\[((?:[^\[\]]|\[[^\]]*\])*)\]', _text(text)
    ):
        yield role, _members(members)
