"""``python -m edp_tools.local.with_parent MODULE [ARGS]``: run ``MODULE`` so that every process
it forks dies with it.

:class:`~edp_tools.local.processes.ManagedProcess` starts its child through ``setpriv
--pdeathsig KILL``, so ``kill -9`` of ``edp dev`` takes the child down; a process the child forks
does not inherit that. gunicorn's own workers notice a dead master (each loop compares
``getppid()`` with it), but the uvicorn worker that serves async functions (ingest) has no such
check: its workers outlived a killed master. Here each forked child asks the kernel for
``SIGTERM`` when its parent dies (``prctl(PR_SET_PDEATHSIG)``), which uvicorn answers with its
graceful shutdown. Linux only; elsewhere the module just runs.

Example:
    >>> argv_with_parent("python3", "functions_framework", "--target", "ingest")[1:4]
    ['-m', 'edp_tools.local.with_parent', 'functions_framework']
"""

from __future__ import annotations

import ctypes
import os
import runpy
import signal
import sys

#: This launcher's module name (to chain it after another launcher: ``-m other ... WITH_PARENT``).
WITH_PARENT = __name__
_PR_SET_PDEATHSIG = 1
_forking_parent = [0]  # the pid that forked, set just before each fork


def argv_with_parent(python: str, module: str, *args: str) -> list[str]:
    """The command line that runs ``python -m module args`` under this launcher."""
    return [python, "-m", __name__, module, *args]


def _remember_parent() -> None:
    _forking_parent[0] = os.getpid()


def _die_with_parent() -> None:
    """In a just-forked child: SIGTERM when the parent dies (also if it already has)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # no libc prctl (not Linux): nothing to ask for
        return
    if os.getppid() != _forking_parent[0]:  # died between the fork and the prctl
        os.kill(os.getpid(), signal.SIGTERM)


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        raise SystemExit("usage: python -m edp_tools.local.with_parent MODULE [ARGS]")
    os.register_at_fork(before=_remember_parent, after_in_child=_die_with_parent)
    sys.argv = args
    runpy.run_module(args[0], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
