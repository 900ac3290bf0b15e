"""Shared fixtures: real local services, started once per test session on free ports.

- ``pubsub_emulator`` (session): the official Pub/Sub emulator; sets ``PUBSUB_EMULATOR_HOST`` and
  ``GOOGLE_CLOUD_PROJECT`` for the whole session; has ``.host`` (host:port) and ``.project``.
- ``postgres`` (session): a throwaway PostgreSQL 15 cluster with ``wal_level=logical``; has
  ``.dsn``, ``.url``, ``.host``, ``.port``, ``.user``, ``.dbname``.
- ``warehouse`` (function): a fresh DuckDB warehouse file in ``tmp_path`` with every catalogue
  table created (``EDP_WAREHOUSE=duckdb``, ``EDP_DUCKDB_PATH`` pointing at it while the test runs).
- autouse: ``get_settings``' cache is cleared before and after every test, so a test that
  changes the environment (``monkeypatch.setenv``) sees its own settings and leaks none.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from edp.settings import get_settings
from edp_tools.local.postgres import PostgresCluster
from edp_tools.local.pubsub_emulator import PubSubEmulator

# A test run started in the background by a non-interactive shell (`cmd &` in a script, some CI
# runners) inherits SIGINT *ignored*, and so would every process the tests start: `edp dev` and
# `edp demo` would ignore the Ctrl-C their tests send. Catching it here gives exec'd children
# the default disposition back (a caught signal is reset on exec; an ignored one stays ignored).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

if TYPE_CHECKING:
    from edp.warehouse.port import Warehouse

TEST_PROJECT = "edp-test"


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def pubsub_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PubSubEmulator]:
    """A Pub/Sub emulator for the whole session; the environment points clients at it."""
    log = tmp_path_factory.mktemp("pubsub-emulator") / "emulator.log"
    emulator = PubSubEmulator(TEST_PROJECT, log_path=log).start()
    saved = {key: os.environ.get(key) for key in emulator.env()}
    os.environ.update(emulator.env())
    get_settings.cache_clear()
    try:
        yield emulator
    finally:
        emulator.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A throwaway PostgreSQL 15 cluster (wal_level=logical) for the whole session."""
    # A short path under /tmp: the unix socket path must fit in 107 bytes, and when we are root
    # the server runs as an unprivileged user that must be able to reach the folder.
    state = Path(tempfile.mkdtemp(prefix="edp-pg-"))
    cluster = PostgresCluster(state / "cluster")
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture
def warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Warehouse]:
    """A fresh DuckDB warehouse in ``tmp_path`` with every catalogue table created."""
    from edp.warehouse import get_warehouse

    monkeypatch.setenv("EDP_WAREHOUSE", "duckdb")
    monkeypatch.setenv("EDP_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("EDP_DUCKDB_PATH", str(tmp_path / "warehouse.duckdb"))
    get_settings.cache_clear()
    wh = get_warehouse(get_settings())
    try:
        wh.create_tables()
        yield wh
    finally:
        wh.close()


@pytest.fixture
def spans_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Traces on, exported to a fresh JSON-lines file (read with ``tests.spans.read_spans``)."""
    from edp.observability import tracing

    path = tmp_path / "spans.jsonl"
    monkeypatch.setenv("EDP_TRACES_EXPORTER", "file")
    monkeypatch.setenv("EDP_TRACES_FILE", str(path))
    get_settings.cache_clear()
    tracing.reset_for_tests()
    yield path
    tracing.reset_for_tests()
    get_settings.cache_clear()
