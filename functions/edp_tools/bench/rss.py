"""Peak resident memory (RSS) of child processes, for memory bars (``*.rss_mib``).

Three ways, by what you have in hand:

- a command line: :func:`run_with_peak_rss` starts it (from a tiny trampoline, see below) and
  reads the kernel's own peak for it (``wait4`` rusage): nothing is sampled, nothing missed;
- a Python function: :func:`call_with_peak_rss` runs it in a **fresh** interpreter
  (multiprocessing ``spawn``) and returns its result with the child's own ``VmHWM``;
- a live process you did not start as a child (a server from a fixture):
  :func:`peak_rss_mib_of_pid` reads its high-water mark ``VmHWM`` from ``/proc``.

Linux only (``/proc``, ``ru_maxrss`` in KiB).

Example:
    >>> import sys
    >>> run = run_with_peak_rss([sys.executable, "-c", "x = bytearray(64 * 2**20)"])
    >>> run.returncode, run.peak_rss_mib > 64
    (0, True)
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from edp.errors import EdpError

T = TypeVar("T")
_KIB_PER_MIB = 1024


@dataclass(frozen=True)
class ChildRun:
    """How a child process ended and how much memory it held at its peak."""

    returncode: int
    peak_rss_mib: float
    wall_s: float


# Linux charges a child's ru_maxrss with the RSS of the image it exec'd from (the forked copy
# of the parent), so a big parent (pytest, the bench runner) inflates its children's figures.
# The command is therefore started from a tiny trampoline interpreter (~10 MiB): its ru_maxrss
# is exact whenever the command's own peak exceeds that.
_TRAMPOLINE = """
import os, sys
fd = int(sys.argv[1])
pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
os.write(fd, f"{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss}".encode())
"""


def run_with_peak_rss(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    timeout_s: float | None = None,
) -> ChildRun:
    """Run ``argv`` to completion and return its exit code and peak RSS (MiB).

    The figure is the command's own ``ru_maxrss`` (its own children are not included; run
    them through this helper too if they matter); figures below ~10 MiB are the trampoline's.

    Raises:
        EdpError: the command ran longer than ``timeout_s`` (its process group is killed).
    """
    started = time.perf_counter()
    read_fd, write_fd = os.pipe()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-S", "-I", "-c", _TRAMPOLINE, str(write_fd), *argv],
            env=dict(env) if env is not None else None,
            cwd=cwd,
            pass_fds=(write_fd,),
            start_new_session=True,
        )
        os.close(write_fd)
        write_fd = -1
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise EdpError(f"{argv[0]} ran longer than {timeout_s} s and was killed") from None
        except BaseException:
            # Interrupted (Ctrl-C, or SIGTERM made SystemExit): the command runs in a session
            # of its own, so nothing else stops it and the servers it started.
            stop_group(proc)
            raise
        report = os.read(read_fd, 64).decode()
    finally:
        os.close(read_fd)
        if write_fd >= 0:
            os.close(write_fd)
    if proc.returncode != 0 or not report:
        raise EdpError(f"could not run {argv[0]!r} (trampoline exit code {proc.returncode})")
    code, maxrss_kib = (int(x) for x in report.split())
    return ChildRun(
        returncode=code,
        peak_rss_mib=maxrss_kib / _KIB_PER_MIB,
        wall_s=time.perf_counter() - started,
    )


#: How long an interrupted command's process group has to stop before it is killed.
STOP_GRACE_S = 15.0


def stop_group(proc: subprocess.Popen[Any], grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM ``proc``'s process group (its own session), SIGKILL it after ``grace_s``."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace_s)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _own_peak_mib() -> float:
    """This process's high-water RSS since its exec (VmHWM; not inflated by the parent)."""
    return peak_rss_mib_of_pid(os.getpid())


def _child_main(conn: Any, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        result = fn(*args)
        peak = _own_peak_mib()
        conn.send(("ok", result, peak))
    except BaseException as exc:  # report any failure to the parent, then exit
        conn.send(("error", f"{type(exc).__name__}: {exc}", 0.0))
    finally:
        conn.close()


def call_with_peak_rss(fn: Callable[..., T], *args: Any) -> tuple[T, float]:
    """Call ``fn(*args)`` in a fresh interpreter; return its result and peak RSS (MiB).

    ``fn`` must be importable by name (a module-level function) and its arguments and result
    picklable.

    Raises:
        EdpError: the function raised in the child (message carried over) or the child died.
    """
    ctx = mp.get_context("spawn")
    parent_conn, child_conn = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child_main, args=(child_conn, fn, args))
    proc.start()
    child_conn.close()
    try:
        status, payload, peak = parent_conn.recv()
    except EOFError:
        proc.join()
        raise EdpError(f"{fn.__name__} child died (exit code {proc.exitcode})") from None
    finally:
        parent_conn.close()
    proc.join()
    if status != "ok":
        raise EdpError(f"{fn.__name__} failed in the child: {payload}")
    return payload, float(peak)


def peak_rss_mib_of_pid(pid: int) -> float:
    """High-water RSS (``VmHWM``) of a live process, in MiB.

    Raises:
        EdpError: no such process (or no /proc).
    """
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError as exc:
        raise EdpError(f"cannot read the memory of pid {pid}: {exc}") from exc
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / _KIB_PER_MIB
    raise EdpError(f"pid {pid} reports no VmHWM (a kernel thread?)")
