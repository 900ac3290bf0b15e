"""The bare functions-framework endpoint the ingest benchmark compares against (returns 200).

An async function, like the ``ingest`` entry point, so functions-framework serves both the same
way (its Starlette app under uvicorn workers).
"""

from __future__ import annotations

import functions_framework.aio
from starlette.requests import Request
from starlette.responses import Response


@functions_framework.aio.http
async def bare(request: Request) -> Response:
    """Read the body (as any endpoint must) and answer 200."""
    await request.body()
    return Response(b"", status_code=200)
