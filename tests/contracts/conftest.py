"""Fixtures for the contract tests: a throwaway copy of the repository's contract sources."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edp_tools.contracts.build import GENERATED_PACKAGE_DIR, repo_root


@pytest.fixture
def contract_tree(tmp_path: Path) -> Path:
    """A copy of ``schemas/`` and the generated package folder, as a build root to mutate."""
    root = repo_root()
    shutil.copytree(root / "schemas", tmp_path / "schemas")
    shutil.copytree(
        root / GENERATED_PACKAGE_DIR,
        tmp_path / GENERATED_PACKAGE_DIR,
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return tmp_path
