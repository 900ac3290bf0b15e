"""``python -m edp.bench``: see :mod:`edp.bench.runner`."""

from __future__ import annotations

import sys

from edp.bench.runner import main

if __name__ == "__main__":
    sys.exit(main())
