"""The function archive exactly as Terraform builds it (``data "archive_file" "functions"``).

The ``source_dir`` and ``excludes`` are read from ``terraform/06-functions.tf``, and the
directory is walked the way hashicorp/archive's zip archiver does (``filepath.Walk`` over
``source_dir``; each path relative to it is matched against every exclude glob, a matching
directory is skipped whole; glob matching with ``**`` from provider 2.5.0 on).
"""

from __future__ import annotations

import os
import re
import zipfile
from functools import cache
from pathlib import Path

from infra.hcl import TF, _load, _unq


def archive_rules() -> tuple[Path, list[str]]:
    """(source directory, exclude globs) of the functions archive."""
    for block in _load(TF / "06-functions.tf").get("data", []):
        for kind, named in block.items():
            if _unq(kind) == "archive_file" and "functions" in {_unq(n) for n in named}:
                body = named.get("functions") or named['"functions"']
                source = _unq(body["source_dir"]).replace("${path.module}", str(TF))
                return Path(os.path.normpath(source)), [_unq(e) for e in body["excludes"]]
    raise AssertionError('terraform/06-functions.tf has no data "archive_file" "functions"')


@cache
def _glob(pattern: str) -> re.Pattern[str]:
    """A doublestar glob as a regex: ``**`` spans directories, ``*`` and ``?`` do not."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"\Z")


def excluded(relpath: str, excludes: list[str]) -> bool:
    """Whether a path relative to source_dir matches an exclude glob.

    Example:
        >>> excluded("edp_tools/cli/main.py", ["edp_tools/**"])
        True
        >>> excluded("edp/ingest/__pycache__", ["**/__pycache__"])
        True
        >>> excluded("edp/ingest/core.py", ["edp_tools/**", "**/*.pyc"])
        False
    """
    return any(_glob(pattern).match(relpath) for pattern in excludes)


def archive_members(source: Path, excludes: list[str]) -> list[str]:
    """Files the archive holds, relative to ``source``, in walk order."""
    members: list[str] = []
    for dirpath, dirnames, filenames in os.walk(source):
        rel_dir = Path(dirpath).relative_to(source)
        dirnames[:] = sorted(
            d for d in dirnames if not excluded((rel_dir / d).as_posix(), excludes)
        )
        for name in sorted(filenames):
            rel = (rel_dir / name).as_posix()
            if not excluded(rel, excludes):
                members.append(rel)
    return members


def build_archive(out: Path) -> Path:
    """Write the archive Terraform would upload to ``out`` (a .zip) and return it."""
    source, excludes = archive_rules()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for rel in archive_members(source, excludes):
            zf.write(source / rel, rel)
    return out
