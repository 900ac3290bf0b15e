"""``edp dev``: run the whole platform on this machine until Ctrl-C.

Starts every registered stack component (:mod:`edp_tools.local.components`: the Pub/Sub emulator,
PostgreSQL 15, topics and subscriptions, warehouse tables, the Cloud Run functions, and whatever
later parts register), shows a status table, watches health, and on Ctrl-C (or SIGTERM) stops
everything in reverse order, leaving no process behind. ``--check`` starts everything, prints the
table, and stops again (exit 1 if anything is unhealthy): a smoke test of the stack.

While it runs, ``<state>/dev.json`` describes the stack (endpoints, child pids, environment to
use from another shell).
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console
from rich.status import Status
from rich.table import Table

from edp.errors import EdpError
from edp.settings import get_settings
from edp_tools.local.stack import Component, Health, Stack, StackContext, registered_components

console = Console(stderr=True)


class _StopRequestedError(BaseException):
    """Raised in the main thread when SIGTERM/SIGHUP asks the stack to stop.

    A BaseException, like KeyboardInterrupt: the signal lands wherever the main thread is,
    often inside a health check whose ``except Exception`` (a broken check is itself
    unhealthy) would otherwise swallow it and leave edp dev running.
    """


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _StopRequestedError(signal.Signals(signum).name)


def _table(stack: Stack, health: dict[str, Health]) -> Table:
    table = Table(title="edp dev", show_lines=False)
    table.add_column("component")
    table.add_column("status")
    table.add_column("details")
    for instance in stack.started:
        h = health.get(instance.name, Health(False, "?"))
        status = "[green]up[/green]" if h.ok else "[red]DOWN[/red]"
        table.add_row(instance.name, status, h.detail)
    for name, endpoint in stack.ctx.endpoints.items():
        table.add_row(f"  {name}", "", endpoint)
    return table


def _write_state(stack: Stack, path: Path, ready: bool) -> None:
    doc = {
        "pid": os.getpid(),
        "ready": ready,
        "endpoints": stack.ctx.endpoints,
        "processes": stack.pids(),
        "env": stack.ctx.env,
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2, default=str))
    tmp.replace(path)


def _running_stack(state_file: Path) -> int | None:
    """Pid of a live ``edp dev`` owning this state folder, if any (stale files are ignored)."""
    try:
        pid = int(json.loads(state_file.read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def _select(only: list[str] | None, skip: list[str] | None) -> list[type[Component]]:
    classes = registered_components()
    names = [c.name for c in classes]
    for name in [*(only or []), *(skip or [])]:
        if name not in names:
            raise typer.BadParameter(f"unknown component {name!r}; known: {', '.join(names)}")
    if only:
        classes = [c for c in classes if c.name in only]
    if skip:
        classes = [c for c in classes if c.name not in skip]
    return classes


class _Progress:
    """Progress output: a spinner while a component starts or stops, one line when it is done."""

    def __init__(self) -> None:
        self._status: Status | None = None

    def __call__(self, name: str, event: str, detail: str) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None
        if event in ("starting", "stopping"):
            what = f"{event} {name}" + (f" ({detail})" if detail else "")
            self._status = console.status(what)
            self._status.start()
            return
        colour = {"failed": "red", "stop-failed": "red", "started": "green"}.get(event, "dim")
        suffix = f" — {detail}" if detail else ""
        console.print(f"[{colour}]{event:>9}[/{colour}] {name}{suffix}")


def _serve(stack: Stack, state_file: Path, check: bool, interval: float) -> int:
    """Start, report, and (unless ``check``) watch until interrupted; returns the exit code."""
    stack.start()
    health = stack.health()
    console.print(_table(stack, health))
    _write_state(stack, state_file, ready=True)
    if check:
        return 0 if all(h.ok for h in health.values()) else 1
    console.print("[bold]ready[/bold] — Ctrl-C stops everything")
    last_bad: set[str] = set()
    while True:
        time.sleep(interval)
        health = stack.health()
        bad = {name for name, h in health.items() if not h.ok}
        if bad != last_bad:
            console.print(_table(stack, health))
            last_bad = bad


def dev(
    check: Annotated[
        bool, typer.Option("--check", help="Start, print the status, stop; exit 1 if unhealthy.")
    ] = False,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="Run only these components (repeatable)."),
    ] = None,
    skip: Annotated[
        list[str] | None, typer.Option("--skip", help="Do not run these components.")
    ] = None,
    port_base: Annotated[
        int,
        typer.Option(help="Port of the first function (ingest); 0 = free ports for all."),
    ] = 8080,
    interval: Annotated[float, typer.Option(help="Seconds between health checks.")] = 2.0,
) -> None:
    """Run the local platform (emulator, PostgreSQL, topics, tables, functions) until Ctrl-C."""
    settings = get_settings()
    state_dir = settings.state_dir.absolute()
    log_dir = state_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    ctx = StackContext(
        settings=settings,
        state_dir=state_dir,
        log_dir=log_dir,
        env={"EDP_STATE_DIR": str(state_dir), "GOOGLE_CLOUD_PROJECT": settings.project},
        port_base=port_base or None,
    )
    stack = Stack(ctx, _select(only, skip), on_event=_Progress())
    state_file = state_dir / "dev.json"
    other = _running_stack(state_file)
    if other is not None:
        console.print(
            f"[red]edp dev is already running on {state_dir} (pid {other})[/red]; stop it, "
            "or give this one its own EDP_STATE_DIR"
        )
        raise typer.Exit(1)
    previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    code = 0
    try:
        code = _serve(stack, state_file, check, interval)
    except (KeyboardInterrupt, _StopRequestedError):
        console.print("\n[bold]stopping[/bold]")
    except EdpError as exc:
        console.print(f"[red]edp dev failed:[/red] {exc}")
        code = 1
    finally:
        # A second Ctrl-C must not cut the cleanup short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            stack.stop()
            state_file.unlink(missing_ok=True)
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    if code:
        raise typer.Exit(code)
