"""Child processes that never outlive us.

Every local service (the Pub/Sub emulator, PostgreSQL, each served function) runs as a
:class:`ManagedProcess`: started in its **own process group** (so one signal reaches the JVM the
emulator's shell script execs, or every PostgreSQL backend), logged to a file (a pipe nobody reads
would fill and block the child), polled until ready, and stopped by signalling the whole group —
the polite signal first, ``SIGKILL`` after a grace period.

Three safety nets make sure nothing is left behind:

* ``stop()`` is called explicitly by whoever started the process (``with`` blocks, fixtures,
  ``edp dev``'s ``finally``);
* an :mod:`atexit` hook stops every process still registered when the interpreter exits normally
  (including after an unhandled exception or ``KeyboardInterrupt``);
* on Linux the child is started through ``setpriv --pdeathsig KILL`` so the kernel kills it if
  the thread that started it dies without cleaning up (``SIGKILL`` of the parent, a crash). The
  signal is tied to the *starting thread*: start long-lived children from a long-lived thread
  (the main thread, a pytest fixture), or pass ``die_with_parent=False``.

Example:
    >>> import sys
    >>> with ManagedProcess("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"]) as p:
    ...     p.running
    True
    >>> p.running
    False
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

from edp.errors import EdpError

__all__ = [
    "ManagedProcess",
    "ProcessError",
    "free_port",
    "port_open",
    "stop_all",
    "wait_until",
]


class ProcessError(EdpError):
    """A local child process failed to start, died, or did not become ready in time."""


_LIVE: set[ManagedProcess] = set()
_LIVE_LOCK = threading.Lock()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it).

    There is a short race between closing the probe socket and the child binding the port;
    callers that start a server on it retry once on a bind failure.

    Example:
        >>> 1024 <= free_port() <= 65535
        True
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    """Whether something accepts TCP connections on ``host:port``.

    Example:
        >>> port_open("127.0.0.1", free_port())
        False
    """
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(
    predicate: Callable[[], bool],
    *,
    timeout: float,
    interval: float = 0.05,
    what: str = "condition",
    process: ManagedProcess | None = None,
) -> None:
    """Poll ``predicate`` until it returns true.

    Args:
        predicate: Cheap check, called repeatedly; exceptions count as "not yet".
        timeout: Seconds before giving up.
        interval: Seconds between polls (grows gently to 0.5 s).
        what: Human description used in the error.
        process: If given, fail fast (with its log tail) when it exits while we wait.

    Raises:
        ProcessError: On timeout, or when ``process`` died first.
    """
    deadline = time.monotonic() + timeout
    delay = interval
    while True:
        with contextlib.suppress(Exception):
            if predicate():
                return
        if process is not None and not process.running:
            raise ProcessError(
                f"{process.name} exited with code {process.returncode} before {what}; "
                f"log tail:\n{process.log_tail()}"
            )
        if time.monotonic() >= deadline:
            tail = f"; log tail:\n{process.log_tail()}" if process is not None else ""
            raise ProcessError(f"timed out after {timeout:.0f}s waiting for {what}{tail}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)


def _setpriv() -> str | None:
    if not sys.platform.startswith("linux"):
        return None
    return shutil.which("setpriv")


class ManagedProcess:
    """One child process in its own process group, stopped as a group.

    Args:
        name: Short label for logs and errors (``pubsub-emulator``, ``fn:ingest``).
        argv: Command line.
        env: Full environment for the child (default: a copy of ours).
        cwd: Working directory.
        log_path: File receiving stdout+stderr (default: a temporary file).
        stop_signal: Polite signal (SIGTERM; PostgreSQL wants SIGINT = fast shutdown).
        signal_group: Send the polite signal to the whole group (True) or only to the leader
            (PostgreSQL: the postmaster shuts its backends down itself).
        stop_timeout: Seconds to wait after the polite signal before ``SIGKILL`` of the group.
        user: Run as this OS user (name), e.g. when root must not run PostgreSQL.
        die_with_parent: Ask the kernel to kill the child when the starting thread dies.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str | os.PathLike[str]],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        log_path: str | os.PathLike[str] | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
        signal_group: bool = True,
        stop_timeout: float = 10.0,
        user: str | None = None,
        die_with_parent: bool = True,
    ) -> None:
        self.name = name
        self.argv = [os.fspath(a) for a in argv]
        self.env = dict(os.environ if env is None else env)
        self.cwd = os.fspath(cwd) if cwd is not None else None
        self.stop_signal = stop_signal
        self.signal_group = signal_group
        self.stop_timeout = stop_timeout
        self.user = user
        self.die_with_parent = die_with_parent
        self._log_path = Path(log_path) if log_path is not None else None
        self._proc: subprocess.Popen[bytes] | None = None
        self._pgid: int | None = None

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self) -> ManagedProcess:
        """Start the child (idempotent while it runs) and register it for atexit cleanup."""
        if self.running:
            return self
        if self._log_path is None:
            fd, tmp = tempfile.mkstemp(prefix=f"edp-{self.name.replace(':', '-')}-", suffix=".log")
            os.close(fd)
            self._log_path = Path(tmp)
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        argv = list(self.argv)
        setpriv = _setpriv() if self.die_with_parent else None
        if setpriv is not None:
            argv = [setpriv, "--pdeathsig", "KILL", "--", *argv]
        with open(self._log_path, "ab") as log:
            try:
                self._proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self.env,
                    cwd=self.cwd,
                    process_group=0,
                    user=self.user,
                    group=self._group(),
                    extra_groups=[] if self.user is not None else None,
                )
            except OSError as exc:
                raise ProcessError(f"cannot start {self.name} ({argv[0]}): {exc}") from exc
        self._pgid = self._proc.pid
        with _LIVE_LOCK:
            _LIVE.add(self)
        return self

    def _group(self) -> int | None:
        if self.user is None:
            return None
        import pwd

        return pwd.getpwnam(self.user).pw_gid

    def wait_ready(
        self, check: Callable[[], bool], *, timeout: float = 60.0, what: str | None = None
    ) -> ManagedProcess:
        """Poll ``check`` until true; stop the child and raise if it dies or times out."""
        try:
            wait_until(
                check, timeout=timeout, what=what or f"{self.name} to be ready", process=self
            )
        except ProcessError:
            self.stop()
            raise
        return self

    def stop(self) -> int | None:
        """Stop the whole process group: polite signal, grace period, then SIGKILL.

        Returns:
            The leader's exit code (None if it was never started).
        """
        proc = self._proc
        if proc is None:
            return None
        pgid = self._pgid
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                if self.signal_group and pgid is not None:
                    os.killpg(pgid, self.stop_signal)
                else:
                    proc.send_signal(self.stop_signal)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=self.stop_timeout)
        # Whatever is left in the group (grandchildren, a hung leader) gets SIGKILL.
        if pgid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        if pgid is not None:
            _wait_group_gone(pgid, timeout=5)
        with _LIVE_LOCK:
            _LIVE.discard(self)
        return proc.returncode

    def __enter__(self) -> ManagedProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- introspection --------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        """Leader pid (also the process-group id), None before start."""
        return self._proc.pid if self._proc is not None else None

    @property
    def pgid(self) -> int | None:
        """Process-group id of the child and everything it spawned."""
        return self._pgid

    @property
    def running(self) -> bool:
        """Whether the leader process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        """Exit code once the leader has exited."""
        return self._proc.poll() if self._proc is not None else None

    @property
    def log_path(self) -> Path | None:
        """File holding the child's stdout and stderr."""
        return self._log_path

    def log_tail(self, max_bytes: int = 4000) -> str:
        """The last ``max_bytes`` of the child's log (for error messages)."""
        if self._log_path is None or not self._log_path.exists():
            return ""
        with open(self._log_path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            return fh.read().decode("utf-8", "replace")

    def __repr__(self) -> str:
        return f"ManagedProcess({self.name!r}, pid={self.pid}, running={self.running})"


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_group_gone(pgid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.02)


def stop_all() -> None:
    """Stop every process this interpreter started and has not stopped yet (newest first)."""
    with _LIVE_LOCK:
        live = list(_LIVE)
    for proc in sorted(live, key=lambda p: p.pid or 0, reverse=True):
        with contextlib.suppress(Exception):
            proc.stop()


atexit.register(stop_all)
