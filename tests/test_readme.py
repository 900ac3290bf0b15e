"""The README stays true: every setting documented, two one-line Quickstart commands, and the
test command is exactly what CI runs."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import AliasChoices

from edp.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, re.S | re.M)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


def _env_names(name: str) -> list[str]:
    alias = Settings.model_fields[name].validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice) for choice in alias.choices]
    return [f"EDP_{name.upper()}"]


def test_every_setting_is_in_the_configuration_table() -> None:
    config = _section("Configuration")
    rows = [line for line in config.splitlines() if line.startswith("| `")]
    missing = []
    for name, field in Settings.model_fields.items():
        env = _env_names(name)[0]
        row = next((r for r in rows if f"`{env}`" in r.split("|")[1]), None)
        if row is None:
            missing.append(f"| `{env}` | ... | {field.description} |")
    assert not missing, "add these rows to the README's Configuration table:\n" + "\n".join(missing)


def test_configuration_table_lists_no_unknown_variable() -> None:
    known = {env for name in Settings.model_fields for env in _env_names(name)}
    config = _section("Configuration")
    listed = set(re.findall(r"`((?:EDP|GOOGLE|PUBSUB|CDC)_[A-Z0-9_]+)`", config))
    assert listed <= known, f"README documents variables Settings does not have: {listed - known}"


def _quickstart_commands() -> list[str]:
    blocks = re.findall(r"```(?:bash|sh)\n(.*?)```", _section("Quickstart"), re.S)
    return [block.strip() for block in blocks]


def test_quickstart_has_exactly_two_one_line_commands() -> None:
    commands = _quickstart_commands()
    assert len(commands) == 2, commands
    assert all("\n" not in c for c in commands), commands
    demo, tests = commands
    assert "nox -s demo" in demo
    assert "nox -s tests" in tests


def test_ci_runs_exactly_the_readme_test_command() -> None:
    tests_command = _quickstart_commands()[1]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests_command in [line.strip() for line in ci]
