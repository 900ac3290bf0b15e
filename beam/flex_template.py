"""The Flex Template's launcher file (``FLEX_TEMPLATE_PYTHON_PY_FILE`` in beam/dataflow.Dockerfile).

The launcher runs it with the template's parameters as flags; it must submit and return (a
template launch that waits for the streaming job never ends). The job's code is the installed
``edp_stream_load`` (the edp wheel), the same code the workers of this image run.
"""

from __future__ import annotations

import logging

from edp_stream_load.pipeline import run

if __name__ == "__main__":
    logging.getLogger().setLevel(logging.INFO)
    run(wait=False)
