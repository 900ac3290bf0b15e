"""What the deployed code imports, found by reading it (nothing is imported).

The deployed code is ``functions/main.py`` and the ``edp`` package. Two rules:

- it never imports the tooling package ``edp_tools`` (laptop-only; not in the archive);
- every third-party module it imports belongs to a distribution that installing
  ``functions/requirements.txt`` brings (the listed ones and their dependencies, as their own
  metadata declares them in this environment).

Lazy imports inside functions count: the archive has nothing else, so a path that reaches a
missing package is a 500 in production.
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

TOOLING_PACKAGE = "edp_tools"
PRODUCTION_PACKAGE = "edp"


@dataclass(frozen=True)
class Violation:
    module: str
    imported: str
    reason: str

    def __str__(self) -> str:
        return f"{self.module} imports {self.imported}: {self.reason}"


def _module_name(root: Path, path: Path) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(root: Path, path: Path) -> set[str]:
    """Absolute module names imported anywhere in ``path`` (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    name = _module_name(root, path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                found.add(".".join([*base, node.module] if node.module else base))
            elif node.module:
                found.add(node.module)
    return found


def deployed_files(functions_dir: Path) -> list[Path]:
    return [functions_dir / "main.py", *sorted((functions_dir / PRODUCTION_PACKAGE).rglob("*.py"))]


def requirement_closure(requirements: Path) -> set[str]:
    """Normalised names of the listed distributions and everything they depend on."""
    todo = []
    for line in requirements.read_text(encoding="utf-8").splitlines():
        text = line.split("#", 1)[0].strip()
        if text:
            todo.append(Requirement(text))
    seen: set[str] = set()
    while todo:
        req = todo.pop()
        name = _normalise(req.name)
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(req.name) or []
        except metadata.PackageNotFoundError:
            continue
        for text in requires:
            dep = Requirement(text)
            # Extras' dependencies are installed only when the extra is asked for.
            if dep.marker is None or dep.marker.evaluate({"extra": ""}):
                todo.append(dep)
    return seen


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def check(functions_dir: Path) -> list[Violation]:
    """Every import of the deployed code that the archive could not satisfy."""
    installed = requirement_closure(functions_dir / "requirements.txt")
    providers = metadata.packages_distributions()
    local = {"main", PRODUCTION_PACKAGE}
    stdlib = set(sys.stdlib_module_names)
    violations: list[Violation] = []
    for path in deployed_files(functions_dir):
        module = _module_name(functions_dir, path)
        for imported in sorted(imports_of(functions_dir, path)):
            top = imported.split(".")[0]
            if top == TOOLING_PACKAGE:
                violations.append(Violation(module, imported, "tooling is not deployed"))
            elif top in local or top in stdlib or top == "__future__":
                continue
            else:
                # Namespace packages (google.*) are provided by several distributions: look up
                # the longest prefix some distribution claims.
                dists = _providers_of(imported, providers)
                if not dists & installed:
                    violations.append(
                        Violation(
                            module,
                            imported,
                            f"provided by {sorted(dists) or 'nothing installed here'}, "
                            "which functions/requirements.txt does not install",
                        )
                    )
    return violations


def _providers_of(imported: str, providers: dict[str, list[str]]) -> set[str]:
    parts = imported.split(".")
    candidates = {_normalise(d) for d in providers.get(parts[0], [])}
    if len(candidates) <= 1:
        return candidates
    # A namespace package (google.*): keep the distributions that ship the deeper module.
    for depth in range(len(parts), 1, -1):
        prefix = ".".join(parts[:depth])
        owners = {dist for dist in candidates if prefix in _modules_shipped(dist)}
        if owners:
            return owners
    return candidates


@cache
def _modules_shipped(dist: str) -> frozenset[str]:
    """Every package/module prefix (``google``, ``google.cloud``, ...) a distribution ships."""
    prefixes: set[str] = set()
    for file in metadata.files(dist) or ():
        parts = Path(str(file)).with_suffix("").parts
        if parts and parts[-1] == "__init__":
            parts = parts[:-1]
        for depth in range(1, min(len(parts), 4) + 1):
            prefixes.add(".".join(parts[:depth]))
    return frozenset(prefixes)
