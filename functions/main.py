"""Cloud Run function entry points, importable by name.

``functions-framework --source functions/main.py --target NAME`` serves any of them; Terraform
deploys each from the same source archive with ``entry_point = NAME``. Every entry point is a
thin adapter over a pure core in the ``edp`` package.
"""

from __future__ import annotations
