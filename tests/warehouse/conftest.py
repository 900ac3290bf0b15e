"""Fixtures of the warehouse tests: one ``bqemulator`` server for the whole session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .bqemu import BqEmulator, BqemuUnavailable


@pytest.fixture(scope="session")
def bq_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BqEmulator]:
    """A running bqemulator (venv built on first use); skips when it cannot be built (offline)."""
    log = tmp_path_factory.mktemp("bqemu") / "bqemulator.log"
    emulator = BqEmulator(log_path=log)
    try:
        emulator.start()
    except BqemuUnavailable as exc:
        pytest.skip(f"bqemulator venv cannot be built here (offline?): {exc}")
    try:
        yield emulator
    finally:
        emulator.stop()
