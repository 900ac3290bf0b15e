"""The bare functions-framework endpoint the ingest benchmark compares against (returns 200)."""

from __future__ import annotations

import flask
import functions_framework


@functions_framework.http
def bare(request: flask.Request) -> tuple[str, int]:
    """Read the body (as any endpoint must) and answer 200."""
    request.get_data()
    return "", 200
