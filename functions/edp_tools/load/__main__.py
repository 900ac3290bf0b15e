"""``python -m edp_tools.load run [...]``: the same command as ``edp load run``."""

from __future__ import annotations

from edp_tools.cli.load import app

if __name__ == "__main__":
    app(prog_name="python -m edp_tools.load")
