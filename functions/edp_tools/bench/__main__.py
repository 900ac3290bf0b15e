"""``python -m edp_tools.bench``: see :mod:`edp_tools.bench.runner`."""

from __future__ import annotations

import sys

from edp_tools.bench.runner import exit_on_sigterm, main

if __name__ == "__main__":
    # A terminated run stops its benchmark's child (a session of its own), and the child the
    # servers and emulators it started (their context managers' ``finally``).
    exit_on_sigterm()
    sys.exit(main())
