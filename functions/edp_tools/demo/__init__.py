"""``edp demo``: replay realistic traffic through the whole local platform and report on it.

One command starts the local stack, loads two weeks of history, replays the last day live over
HTTP while a shop writes its database, waits for the stream load and CDC to catch up, runs the
daily ETL, and writes a self-contained HTML report plus a Markdown summary in which every
number is read back from the warehouse or measured (:mod:`edp_tools.demo.runner`).

Example (starts real services; see ``edp demo --help``)::

    from edp_tools.demo import DemoConfig, DemoRunner
    result = DemoRunner(DemoConfig.for_size("small")).run()
    assert result.accounting.balances
"""

from __future__ import annotations

from edp_tools.demo.config import SIZES, DemoConfig, DemoSize
from edp_tools.demo.runner import DemoError, DemoResult, DemoRunner

__all__ = ["SIZES", "DemoConfig", "DemoError", "DemoResult", "DemoRunner", "DemoSize"]
