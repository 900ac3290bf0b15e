"""Developer sessions: ``nox -s tests | lint | demo | bench``.

Every session builds its own virtualenv under ``.nox/`` (with uv when available) and installs the
project into it, so a fresh clone needs only Python 3.11+, ``nox`` and ``uv``; the README's two
commands are ``nox -s demo`` and ``nox -s tests``. Arguments after ``--`` go to the tool:
``nox -s tests -- tests/bus -x``, ``nox -s bench -- generate``.

Helper environments that cannot share the main venv (their pins conflict with ours) are built by
the tests that need them on first use (Beam: ``beam_tests``; workflows-emulator: ``workflows``).
"""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent
LOCAL = ".[local,dev]"


def _install_project(session: nox.Session, extras: str = LOCAL) -> None:
    session.install("-e", extras)


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite (real Pub/Sub emulator, PostgreSQL 15, DuckDB on this machine)."""
    _install_project(session)
    # Two workers (the reference machine's two cores; most of the suite waits on servers it
    # started), each taking whole files so a module's fixtures start once.
    session.run("python", "-m", "pytest", "-n", "2", "--dist", "loadfile", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (lint + format check) and mypy --strict on the package and the entry points."""
    _install_project(session)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")


@nox.session
def demo(session: nox.Session) -> None:
    """The local platform's main job: ``edp demo`` (replay traffic end to end, write the report).

    ``edp dev`` runs the same stack without traffic, until Ctrl-C.
    """
    _install_project(session, ".[local]")
    session.run("edp", "demo", *session.posargs)


@nox.session
def screenshot(session: nox.Session) -> None:
    """Regenerate the demo report (``docs/demo/``) and the README's picture of it
    (``docs/demo-screenshot.png``, taken by Debian's headless chromium; apt-get install chromium).
    Arguments after ``--`` go to ``edp demo`` (e.g. ``-- --size small``)."""
    _install_project(session)
    session.run("edp", "demo", "--out", "docs/demo", *session.posargs)
    session.run(
        "python",
        "-m",
        "edp_tools.demo.browser",
        "screenshot",
        "docs/demo/index.html",
        "docs/demo-screenshot.png",
    )


@nox.session
def bench(session: nox.Session) -> None:
    """Run the benchmarks (all, or the key prefixes after ``--``); writes docs/benchmarks.*."""
    _install_project(session)
    session.run("python", "-m", "edp_tools.bench", *session.posargs)


@nox.session(name="beam_tests", venv_backend="none")
def beam_tests(session: nox.Session) -> None:
    """The Beam job's tests in their own venv (``.nox/beam``: apache-beam pins clash with ours).

    ``tests/beam/beam_venv.py`` builds the venv with uv on first use; the main ``tests`` session
    also runs these tests (through ``tests/beam/test_beam_suite.py``).
    """
    session.run("python", "tests/beam/beam_venv.py", "--pytest", *session.posargs)


@nox.session
def workflows(session: nox.Session) -> None:
    """Only the Cloud Workflows tests (the workflows-emulator venv is built on first use)."""
    _install_project(session)
    session.run("python", "-m", "pytest", "tests/workflows", *session.posargs)


@nox.session
def infra(session: nox.Session) -> None:
    """Static checks of terraform/ and gke/: fmt, HCL against schemas/ and settings, checkov,
    Kubernetes schema validation (checkov's own venv is built by tests/infra on first use)."""
    _install_project(session)
    session.run("python", "-m", "pytest", "tests/infra", *session.posargs)


@nox.session
def audit(session: nox.Session) -> None:
    """pip-audit of the deployed requirements. The tool exits 3 when no advisory source answered
    (it then prints "NOT AUDITED" loudly); nox would turn any non-zero code into 1, so 3 is
    accepted here and the verdict is the tool's own output."""
    _install_project(session)
    session.run("python", "-m", "edp_tools.security.audit", success_codes=[0, 3])


@nox.session(venv_backend="none")
def requirements(session: nox.Session) -> None:
    """Lock the project (uv.lock) and write functions/requirements.txt from the lock: what Cloud
    Run installs, the runtime dependencies and their dependencies with exact pins."""
    session.run("uv", "lock", external=True)
    session.run(
        "uv",
        "export",
        "--frozen",
        "--no-hashes",
        "--no-emit-project",
        "--no-dev",
        "--quiet",
        "--output-file",
        "functions/requirements.txt",
        external=True,
    )


@nox.session(name="bqemu", venv_backend="none")
def bqemu(session: nox.Session) -> None:
    """The bqemulator venv (``.nox/bqemu``) for the BigQuery adapter's contract tests; with
    ``-- --serve`` a BigQuery REST emulator on :9050 (the tests build and start it themselves)."""
    session.run("python", "tests/warehouse/bqemu.py", *session.posargs)
