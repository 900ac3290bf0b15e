"""The parts of ``edp dev`` the demo starts, in their registry order.

The demo runs the registered stack components (:mod:`edp_tools.local.components`) except the ones
that write the warehouse continuously (:data:`IN_PROCESS`), which it runs as threads sharing
one DuckDB handle (see :mod:`edp_tools.demo.workers` for why). Each component's exports
(``PUBSUB_EMULATOR_HOST``, ``EDP_CDC_SOURCE_DSN``, ...) are copied into this process's
environment as soon as it starts, so the in-process parts read the same settings as the
children.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from edp.settings import get_settings
from edp_tools.local.stack import Component, Stack, StackContext, registered_components

#: Components the demo replaces by in-process threads (same code, shared warehouse handle).
IN_PROCESS = ("stream-loader", "cdc-flush")


def demo_components() -> list[type[Component]]:
    """Every registered component but :data:`IN_PROCESS`, in start order."""
    return [c for c in registered_components() if c.name not in IN_PROCESS]


def build_stack(
    state_dir: Path, on_event: Callable[[str, str, str], None], extra_env: dict[str, str]
) -> Stack:
    """A stack for the demo under ``state_dir`` (free ports, so a running ``edp dev`` is
    not disturbed); starting it also exports each component's environment to this process."""
    os.environ.update(extra_env)
    get_settings.cache_clear()
    settings = get_settings()
    log_dir = state_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    ctx = StackContext(
        settings=settings,
        state_dir=state_dir,
        log_dir=log_dir,
        env={
            **extra_env,
            "EDP_STATE_DIR": str(state_dir),
            "GOOGLE_CLOUD_PROJECT": settings.project,
        },
        port_base=None,
    )

    def export(name: str, event: str, detail: str) -> None:
        if event == "started":
            _export(ctx)
        on_event(name, event, detail)

    return Stack(ctx, demo_components(), on_event=export)


def _export(ctx: StackContext) -> None:
    """Copy the stack's child environment into ours and re-read the settings."""
    from edp.bus.clients import clear_client_cache

    changed = {k: v for k, v in ctx.env.items() if os.environ.get(k) != v}
    if not changed:
        return
    os.environ.update(changed)
    get_settings.cache_clear()
    ctx.settings = get_settings()
    clear_client_cache()
