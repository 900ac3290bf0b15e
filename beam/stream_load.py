"""Entry script of the stream-load Beam job (see ``edp_stream_load`` for the commands).

``python beam/stream_load.py --runner=... --subscription=...`` is the same as
``python -m edp_stream_load ...`` with ``beam/`` on the path.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from edp_stream_load.pipeline import run

if __name__ == "__main__":
    logging.getLogger().setLevel(logging.INFO)
    run()
