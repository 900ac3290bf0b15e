"""``python -m edp_tools.bench``: see :mod:`edp_tools.bench.runner`."""

from __future__ import annotations

import sys

from edp_tools.bench.runner import main

if __name__ == "__main__":
    sys.exit(main())
