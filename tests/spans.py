"""The spans the file exporter wrote, for the trace tests (the fixture is ``spans_file``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edp.observability import tracing


def read_spans(path: Path) -> list[dict[str, Any]]:
    """Every span exported to ``path`` so far (pending ones flushed first)."""
    tracing.flush_traces()
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
