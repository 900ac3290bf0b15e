"""The dependency audit's verdict on pip-audit's JSON report (format: pip-audit README, "JSON"
output: ``{"dependencies": [{"name", "version", "vulns": [{"id", "fix_versions", ...}]} |
{"name", "skip_reason"}], "fixes": []}``).

pip-audit exits 0 with "No known vulnerabilities found" when the advisory service skipped every
package; the audit must call that "not audited", never a pass.
"""

from __future__ import annotations

from edp_tools.security.audit import NOT_AUDITED, OK, VULNERABLE, verdict

CLEAN = {"name": "flask", "version": "3.1.2", "vulns": []}
SKIPPED = {
    "name": "anyio",
    "skip_reason": "Dependency not found on PyPI and could not be audited: anyio (4.16.0)",
}
VULN = {
    "name": "werkzeug",
    "version": "2.2.2",
    "vulns": [{"id": "PYSEC-2023-58", "fix_versions": ["2.2.3"], "aliases": ["CVE-2023-25577"]}],
}


def test_everything_audited_and_clean_is_ok() -> None:
    v = verdict({"dependencies": [CLEAN], "fixes": []})
    assert v.code == OK and "no known vulnerabilities" in v.summary()


def test_skipped_packages_are_not_audited_even_if_pip_audit_says_no_vulnerabilities() -> None:
    v = verdict({"dependencies": [CLEAN, SKIPPED], "fixes": []})
    assert v.code == NOT_AUDITED
    assert v.summary().startswith("NOT AUDITED: 1 of 2 packages")


def test_empty_report_is_not_audited() -> None:
    assert verdict({"dependencies": [], "fixes": []}).code == NOT_AUDITED


def test_vulnerabilities_win() -> None:
    v = verdict({"dependencies": [CLEAN, SKIPPED, VULN], "fixes": []})
    assert v.code == VULNERABLE
    assert "werkzeug: PYSEC-2023-58" in v.summary()
