"""The Pub/Sub emulator and PostgreSQL fixtures are real, isolated services."""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.request
from pathlib import Path

import psycopg2
import pytest

from edp.settings import get_settings
from edp_tools.local.postgres import PostgresCluster
from edp_tools.local.pubsub_emulator import PubSubEmulator


def test_emulator_fixture_points_clients_and_settings_at_it(
    pubsub_emulator: PubSubEmulator,
) -> None:
    assert os.environ["PUBSUB_EMULATOR_HOST"] == pubsub_emulator.host
    settings = get_settings()
    assert settings.pubsub_emulator_host == pubsub_emulator.host
    assert settings.project == pubsub_emulator.project
    with urllib.request.urlopen(f"http://{pubsub_emulator.host}/", timeout=5) as response:
        assert response.read().strip() == b"Ok"


def test_emulator_stops_cleanly(tmp_path: Path) -> None:
    emulator = PubSubEmulator("p", log_path=tmp_path / "emu.log").start()
    assert emulator.healthy()
    pgid = emulator.process.pgid if emulator.process else None
    emulator.stop()
    assert not emulator.running
    assert not emulator.healthy()
    assert pgid is not None
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)


def _jvm_args(emulator: PubSubEmulator) -> list[str]:
    """The emulator JVM's command line (the launcher execs java in its own process)."""
    pid = emulator.process.pid if emulator.process else None
    assert pid is not None
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


def _jvm_flags(emulator: PubSubEmulator) -> str | None:
    """What the JVM itself says its flags are (``jcmd``, in JDKs; None on a bare JRE)."""
    jcmd = shutil.which("jcmd")
    pid = emulator.process.pid if emulator.process else None
    if jcmd is None or pid is None:
        return None
    argv = [jcmd, str(pid), "VM.flags"]
    run = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=30)
    return run.stdout


def test_emulator_jvm_runs_the_low_pause_collector(pubsub_emulator: PubSubEmulator) -> None:
    # With the JVM's default G1 the emulator paused 20-36 ms every few seconds at the bench's
    # rate (docs: edp_tools.local.pubsub_emulator); a JVM that does not know the flag would not
    # have started at all.
    assert "-XX:+UseZGC" in _jvm_args(pubsub_emulator)
    flags = _jvm_flags(pubsub_emulator)
    if flags is not None:
        assert "-XX:+UseZGC" in flags.split()


def test_emulator_jvm_options_from_the_environment_win(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOUD_PUBSUB_EMULATOR_OPTS", "-XX:+UseSerialGC")
    with PubSubEmulator("p", log_path=tmp_path / "emu.log") as emulator:
        args = _jvm_args(emulator)
        assert "-XX:+UseSerialGC" in args
        assert "-XX:+UseZGC" not in args


def test_postgres_is_ready_for_logical_replication(postgres: PostgresCluster) -> None:
    conn = psycopg2.connect(postgres.dsn)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SHOW wal_level")
            assert cur.fetchone() == ("logical",)
            cur.execute("SELECT current_database(), current_user")
            assert cur.fetchone() == (postgres.dbname, postgres.user)
            cur.execute("SELECT pg_create_logical_replication_slot('t_slot', 'pgoutput')")
            cur.execute("SELECT pg_drop_replication_slot('t_slot')")
    finally:
        conn.close()
    assert f"port={postgres.port}" in postgres.dsn
    assert postgres.url.startswith("postgresql://")


def test_cluster_restarts_on_its_existing_data(tmp_path: Path) -> None:
    import tempfile

    state = Path(tempfile.mkdtemp(prefix="edp-pg-t-"))
    cluster = PostgresCluster(state / "c", dbname="shop")
    try:
        with cluster:
            with psycopg2.connect(cluster.dsn) as conn, conn.cursor() as cur:
                cur.execute("CREATE TABLE kept (id int)")
                cur.execute("INSERT INTO kept VALUES (42)")
            conn.close()
            postmaster = cluster.process.pid if cluster.process else None
        assert postmaster is not None and not cluster.running
        with cluster:
            with psycopg2.connect(cluster.dsn) as conn, conn.cursor() as cur:
                cur.execute("SELECT id FROM kept")
                assert cur.fetchall() == [(42,)]
            conn.close()
    finally:
        cluster.destroy()
    assert not state.joinpath("c").exists()


def test_a_second_server_on_the_same_cluster_is_refused_and_stale_pid_files_cleared() -> None:
    import tempfile

    from edp.errors import ConfigError

    state = Path(tempfile.mkdtemp(prefix="edp-pg-t-"))
    first = PostgresCluster(state / "c")
    try:
        with first:
            with pytest.raises(ConfigError, match="already runs"):
                PostgresCluster(state / "c").start()
            assert first.running
        # A pid file left by a killed run (its process is gone) does not block a restart.
        (first.data_dir / "postmaster.pid").write_text("999999999\n")
        with first:
            assert first.running
    finally:
        first.destroy()
