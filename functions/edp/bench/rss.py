"""Peak resident memory (RSS) of child processes, for memory bars (``*.rss_mib``).

Three ways, by what you have in hand:

- a command line: :func:`run_with_peak_rss` starts it and reads the kernel's own peak for that
  child (``wait4`` rusage), so nothing is sampled and nothing is missed;
- a Python function: :func:`call_with_peak_rss` runs it in a **fresh** interpreter
  (multiprocessing ``spawn``, so the parent's memory is not inherited as with ``fork``) and
  returns its result with the child's peak RSS;
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
import resource
import subprocess
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


def run_with_peak_rss(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    timeout_s: float | None = None,
) -> ChildRun:
    """Run ``argv`` to completion and return its exit code and peak RSS (MiB).

    The figure is the child's own ``ru_maxrss`` (its grandchildren are not included; run
    them through this helper too if they matter).

    Raises:
        EdpError: the child ran longer than ``timeout_s`` (it is killed first).
    """
    started = time.perf_counter()
    proc = subprocess.Popen(list(argv), env=dict(env) if env is not None else None, cwd=cwd)
    deadline = None if timeout_s is None else started + timeout_s
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG if deadline else 0)
        if pid == proc.pid:
            break
        if deadline is not None and time.perf_counter() > deadline:
            proc.kill()
            os.wait4(proc.pid, 0)
            raise EdpError(f"{argv[0]} ran longer than {timeout_s} s and was killed")
        time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)  # keep Popen from reaping it again
    return ChildRun(
        returncode=proc.returncode,
        peak_rss_mib=usage.ru_maxrss / _KIB_PER_MIB,
        wall_s=time.perf_counter() - started,
    )


def _child_main(conn: Any, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        result = fn(*args)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / _KIB_PER_MIB
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
