"""Dependency audit of what the functions deploy: ``pip-audit`` over the resolved requirements.

``functions/requirements.txt`` (what Cloud Run installs) holds ranges, so it is first resolved
to exact pins with ``uv pip compile`` (the same resolution the deploy makes today), then audited
with ``pip-audit --no-deps --disable-pip`` against the PyPI advisory API (the registry is the
one outside service this platform's machines reach).

The audit never passes silently: pip-audit exits 0 with "No known vulnerabilities found" even
when every package was *skipped* because the advisory service did not know it (a registry
mirror without PyPI's JSON API, no network). :func:`verdict` therefore counts what was really
audited; anything skipped makes the outcome ``not audited`` (exit 3) with the reason.

Run: ``nox -s audit`` (or ``python -m edp_tools.security.audit``). Exit codes: 0 audited, no
known vulnerability; 1 vulnerabilities found; 3 not (fully) audited - no advisory source
answered for every package.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
REQUIREMENTS = ROOT / "functions" / "requirements.txt"
OK, VULNERABLE, NOT_AUDITED = 0, 1, 3


@dataclass
class Verdict:
    """What one pip-audit report says."""

    audited: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    vulnerable: dict[str, list[str]] = field(default_factory=dict)

    @property
    def code(self) -> int:
        """Exit code: vulnerable beats not audited beats OK."""
        if self.vulnerable:
            return VULNERABLE
        if self.skipped or not self.audited:
            return NOT_AUDITED
        return OK

    def summary(self) -> str:
        """One paragraph for the CI log."""
        if self.vulnerable:
            lines = [f"  {name}: {', '.join(ids)}" for name, ids in sorted(self.vulnerable.items())]
            return "VULNERABLE dependencies:\n" + "\n".join(lines)
        if self.code == NOT_AUDITED:
            reasons = sorted(set(self.skipped.values()))[:3]
            return (
                f"NOT AUDITED: {len(self.skipped)} of {len(self.skipped) + len(self.audited)} "
                "packages had no answer from any advisory source (no advisory database "
                f"reachable?). Examples: {reasons}"
            )
        return f"audited {len(self.audited)} packages: no known vulnerabilities"


def verdict(report: dict[str, Any]) -> Verdict:
    """Classify a ``pip-audit -f json`` report.

    Example:
        >>> v = verdict({"dependencies": [
        ...     {"name": "flask", "version": "3.1.0", "vulns": []},
        ...     {"name": "anyio", "skip_reason": "Dependency not found on PyPI"}]})
        >>> v.code, v.audited, list(v.skipped)
        (3, ['flask'], ['anyio'])
    """
    out = Verdict()
    for dep in report.get("dependencies", []):
        name = str(dep.get("name"))
        if "skip_reason" in dep:
            out.skipped[name] = str(dep["skip_reason"])
            continue
        out.audited.append(name)
        ids = [str(v.get("id")) for v in dep.get("vulns", [])]
        if ids:
            out.vulnerable[name] = ids
    return out


def _compile(requirements: Path, lock: Path) -> None:
    subprocess.run(
        ["uv", "pip", "compile", "-q", str(requirements), "--python-version",
         f"{sys.version_info.major}.{sys.version_info.minor}", "-o", str(lock)],
        check=True,
    )  # fmt: skip


def _audit(lock: Path, service: str, out: Path) -> dict[str, Any] | None:
    """Run pip-audit; its JSON report, or None if the service could not be reached at all."""
    proc = subprocess.run(
        [sys.executable, "-m", "pip_audit", "-r", str(lock), "--no-deps", "--disable-pip",
         "--progress-spinner", "off", "-s", service, "-f", "json", "-o", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    if not out.exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        print(f"pip-audit ({service}) failed: {tail[0]}", file=sys.stderr)
        return None
    data: dict[str, Any] = json.loads(out.read_text())
    return data


def main(requirements: Path = REQUIREMENTS) -> int:
    """Resolve, audit against PyPI's advisory API, print the verdict."""
    with tempfile.TemporaryDirectory() as tmp:
        lock = Path(tmp) / "requirements.lock"
        _compile(requirements, lock)
        best = Verdict()
        # PyPI's own advisory API only: the package registry is the one outside service CI
        # and developers' machines may reach (OSV is another host).
        for service in ("pypi",):
            report = _audit(lock, service, Path(tmp) / f"{service}.json")
            if report is None:
                continue
            found = verdict(report)
            if not best.audited or len(found.audited) > len(best.audited):
                best = found
            if found.code != NOT_AUDITED:
                break
        if not best.audited and not best.skipped:
            best.skipped["*"] = "no advisory service reachable (PyPI JSON API)"
    print(best.summary())
    return best.code


if __name__ == "__main__":
    raise SystemExit(main())
