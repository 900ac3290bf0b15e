"""A throwaway PostgreSQL 15 cluster for the local stack and the tests.

``initdb`` under a state folder, then the ``postgres`` server itself as a :class:`ManagedProcess`
(own process group; stopped with ``SIGINT`` = fast shutdown, so open replication connections do
not hold the shutdown up) with ``wal_level=logical`` so the local CDC reader can stream
``pgoutput`` changes, listening on ``127.0.0.1:<free port>`` with trust authentication.

PostgreSQL refuses to run as root. When we are root (containers, CI), the cluster is owned by and
runs as an unprivileged OS user — ``postgres`` if it exists, else ``nobody`` — and the folders on
the way to the data directory get the ``o+x`` (traverse) bit if they lack it.

Example (needs the PostgreSQL 15 server binaries):
    >>> with PostgresCluster(Path("/tmp/pg-demo")) as pg:       # doctest: +SKIP
    ...     psycopg2.connect(pg.dsn)
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import stat
import subprocess
from pathlib import Path
from types import TracebackType

from edp.errors import ConfigError
from edp_tools.local.processes import ManagedProcess, ProcessError, free_port

__all__ = ["PostgresCluster", "find_pg_bindir"]

#: Socket paths longer than this do not fit in ``sockaddr_un`` (107 bytes incl. the file name).
_MAX_SOCKET_DIR = 90


def find_pg_bindir() -> Path:
    """The folder holding ``initdb`` and ``postgres`` (15 or newer).

    Asks ``pg_config --bindir`` first, then Debian's ``/usr/lib/postgresql/<major>/bin`` (newest
    major first), then the folder of ``initdb`` on the PATH.

    Raises:
        ConfigError: When no PostgreSQL server binaries are installed.
    """
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        out = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        ).stdout.strip()
        if out:
            candidates.append(Path(out))
    debian = Path("/usr/lib/postgresql")
    if debian.is_dir():
        majors = sorted(
            (p for p in debian.iterdir() if p.name.isdigit()), key=lambda p: int(p.name)
        )
        candidates.extend(p / "bin" for p in reversed(majors))
    initdb = shutil.which("initdb")
    if initdb is not None:
        candidates.append(Path(initdb).resolve().parent)
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "postgres").is_file():
            return candidate
    raise ConfigError(
        "PostgreSQL server binaries (initdb, postgres) not found; install PostgreSQL 15, "
        "e.g. `apt-get install postgresql-15` or `brew install postgresql@15`"
    )


def _run_as_user() -> str | None:
    """The OS user to run the server as: None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise ConfigError("running as root and neither a 'postgres' nor a 'nobody' user exists")


def _make_traversable(path: Path) -> None:
    """Give every ancestor of ``path`` the others-execute bit (root only; traverse, not list)."""
    for parent in reversed(path.resolve().parents):
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            os.chmod(parent, stat.S_IMODE(mode) | stat.S_IXOTH)


class PostgresCluster:
    """A PostgreSQL cluster living in ``state_dir`` (created on first start, reused after).

    Args:
        state_dir: Folder for the cluster (``data/``, ``socket/``, ``postgres.log``).
        port: TCP port (default: a free one, chosen at every start).
        user: Database superuser name.
        dbname: Database created for the platform.
        fast: Turn off fsync and full-page writes (a throwaway cluster; crash safety is moot).
        startup_timeout: Seconds to wait for the server to accept connections.
    """

    def __init__(
        self,
        state_dir: str | os.PathLike[str],
        *,
        port: int | None = None,
        user: str = "edp",
        dbname: str = "edp",
        fast: bool = True,
        startup_timeout: float = 60.0,
    ) -> None:
        self.state_dir = Path(state_dir).absolute()
        self.data_dir = self.state_dir / "data"
        self.host = "127.0.0.1"
        self._requested_port = port
        self.port = port or 0
        self.user = user
        self.dbname = dbname
        self.fast = fast
        self.startup_timeout = startup_timeout
        self.os_user = _run_as_user()
        self.process: ManagedProcess | None = None

    # --- connection facts -----------------------------------------------------------------------
    @property
    def dsn(self) -> str:
        """libpq connection string of the platform database."""
        return self.dsn_for(self.dbname)

    def dsn_for(self, dbname: str) -> str:
        """libpq connection string for another database of this cluster."""
        return f"host={self.host} port={self.port} user={self.user} dbname={dbname}"

    @property
    def url(self) -> str:
        """The same connection as a ``postgresql://`` URL."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"

    @property
    def running(self) -> bool:
        """Whether the postmaster is alive."""
        return self.process is not None and self.process.running

    # --- lifecycle ------------------------------------------------------------------------------
    def _chown(self, path: Path) -> None:
        if self.os_user is not None:
            entry = pwd.getpwnam(self.os_user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _socket_dir(self) -> Path | None:
        sock = self.state_dir / "socket"
        return sock if len(str(sock)) <= _MAX_SOCKET_DIR else None

    def initdb(self) -> None:
        """Create the cluster unless ``data/`` already holds one."""
        if (self.data_dir / "PG_VERSION").exists():
            return
        bindir = find_pg_bindir()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if self.os_user is not None:
            _make_traversable(self.state_dir)
        self._chown(self.state_dir)
        if self.data_dir.exists():
            shutil.rmtree(self.data_dir)
        self.data_dir.mkdir(mode=0o700)
        self._chown(self.data_dir)
        result = subprocess.run(
            [
                str(bindir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                self.user,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            check=False,
            user=self.os_user,
            group=pwd.getpwnam(self.os_user).pw_gid if self.os_user else None,
            extra_groups=[] if self.os_user else None,
            cwd=self.state_dir,
        )
        if result.returncode != 0:
            raise ProcessError(f"initdb failed ({result.returncode}):\n{result.stderr[-4000:]}")

    def _server_argv(self, bindir: Path) -> list[str]:
        sock = self._socket_dir()
        settings = {
            "listen_addresses": self.host,
            "port": str(self.port),
            "unix_socket_directories": str(sock) if sock is not None else "",
            "wal_level": "logical",
            "max_replication_slots": "16",
            "max_wal_senders": "16",
            "max_connections": "100",
            "shared_buffers": "64MB",
            "timezone": "UTC",
            "log_timezone": "UTC",
            "logging_collector": "off",
        }
        if self.fast:
            settings |= {"fsync": "off", "full_page_writes": "off"}
        argv = [str(bindir / "postgres"), "-D", str(self.data_dir)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        return argv

    def _accepting(self) -> bool:
        import psycopg2

        conn = psycopg2.connect(self.dsn_for("postgres"), connect_timeout=2)
        conn.close()
        return True

    def start(self) -> PostgresCluster:
        """initdb if needed, start the server, wait for connections, create the database."""
        self.initdb()
        bindir = find_pg_bindir()
        sock = self._socket_dir()
        if sock is not None:
            sock.mkdir(exist_ok=True)
            self._chown(sock)
        stale_pid = self.data_dir / "postmaster.pid"
        attempts = 1 if self._requested_port else 2
        for attempt in range(attempts):
            if stale_pid.exists() and not self.running:
                self._clear_stale_pid_file(stale_pid)
            self.port = self._requested_port or free_port()
            self.process = ManagedProcess(
                "postgres",
                self._server_argv(bindir),
                log_path=self.state_dir / "postgres.log",
                stop_signal=signal.SIGINT,
                signal_group=False,
                stop_timeout=15.0,
                user=self.os_user,
                cwd=self.state_dir,
            ).start()
            try:
                self.process.wait_ready(
                    self._accepting,
                    timeout=self.startup_timeout,
                    what=f"PostgreSQL on {self.host}:{self.port}",
                )
                break
            except ProcessError:
                if attempt + 1 == attempts:
                    raise
        self._create_database()
        return self

    def _clear_stale_pid_file(self, pid_file: Path) -> None:
        """Remove a pid file left by a killed run; refuse if its postmaster still lives.

        The parent-death signal kills the postmaster of a killed ``edp dev`` but cannot remove
        its pid file; a *live* one means another stack uses this state folder.
        """
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            pid_file.unlink(missing_ok=True)
            return
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            pid_file.unlink(missing_ok=True)
            return
        except PermissionError:
            pass
        cmdline = Path(f"/proc/{pid}/cmdline")
        if cmdline.exists() and b"postgres" not in cmdline.read_bytes():
            pid_file.unlink(missing_ok=True)  # the pid was reused by something else
            return
        raise ConfigError(
            f"a PostgreSQL server (pid {pid}) already runs on {self.data_dir}; "
            "stop the other stack using this state folder first"
        )

    def _create_database(self) -> None:
        import psycopg2

        conn = psycopg2.connect(self.dsn_for("postgres"))
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.dbname,))
                if cur.fetchone() is None:
                    cur.execute(f'CREATE DATABASE "{self.dbname}"')
        finally:
            conn.close()

    def stop(self) -> None:
        """Fast shutdown of the server (SIGINT), SIGKILL of the group if it hangs."""
        if self.process is not None:
            self.process.stop()

    def destroy(self) -> None:
        """Stop the server and delete the cluster's folder."""
        self.stop()
        shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
