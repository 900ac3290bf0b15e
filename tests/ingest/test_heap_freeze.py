"""The ingest worker freezes its long-lived heap out of the garbage collector.

Why it matters is in edp.ingest.asgi (full collections walked the whole app and stopped the
event loop for 45-130 ms); here, that it happens: in a fresh interpreter (gc.freeze is
process-wide, so never in the test process), the app built on a running loop leaves objects in
the permanent generation, and the scheduled second freeze adds what was built after it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import asyncio, gc, json
    from edp.ingest import asgi

    asgi.REFREEZE_AFTER_S = 0.2

    async def main():
        before = gc.get_freeze_count()
        asgi.cached_app()
        built = gc.get_freeze_count()
        kept = [[i] for i in range(5000)]  # long-lived state built by the first requests
        await asyncio.sleep(0.5)
        print(json.dumps({"before": before, "built": built, "later": gc.get_freeze_count(),
                          "kept": len(kept)}))

    asyncio.run(main())
    """
)


def test_the_app_and_what_follows_it_are_frozen_out_of_the_collector() -> None:
    env = {
        **os.environ,
        "EDP_ENVIRONMENT": "local",
        "EDP_WRITE_KEYS": "k",
        "GOOGLE_CLOUD_PROJECT": "p",
        "EDP_METRICS_EXPORTER": "none",
        "EDP_TRACES_EXPORTER": "none",
    }
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    counts = json.loads(out.stdout.strip().splitlines()[-1])
    assert counts["before"] == 0
    assert counts["built"] > 10_000  # modules, the flask app, validators
    assert counts["later"] >= counts["built"] + 5_000  # the 5,000 lists made after the build
