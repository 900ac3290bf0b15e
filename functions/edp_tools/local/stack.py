"""The local stack: a registry of components that ``edp dev`` starts, watches and stops.

A component is one part of the laptop platform (the Pub/Sub emulator, PostgreSQL, the served
functions, the CDC reader, the stream loader, ...). Adding one is one file in
:mod:`edp_tools.local.components` (every module there is imported automatically)::

    from edp_tools.local.stack import Component, Health, StackContext, component

    @component
    class CdcReader(Component):
        name = "cdc-reader"
        order = 60                      # after pubsub (10), postgres (20), topology (30), ...
        description = "PostgreSQL -> Debezium-shaped Pub/Sub messages"

        def start(self, ctx: StackContext) -> None:
            self.proc = ctx.spawn(self.name, ["python", "-m", "edp_tools.cdc.reader", "--dsn",
                                              ctx.values["postgres_dsn"]])
            ...

        def stop(self) -> None: self.proc.stop()
        def health(self) -> Health: return Health(self.proc.running, "streaming")

Components start in ``order`` and stop in reverse. ``ctx.env`` is the environment every child
process gets (the emulator host, the project, the state folder, ...); components add to it, and
``ctx.values`` shares facts (``postgres_dsn``, ``functions`` URLs) with the components after them.
Use :meth:`StackContext.export` for variables this process must see too (it refreshes
``ctx.settings``).
Long-running work belongs in child processes started with :meth:`StackContext.spawn` (own process
group, log file under ``<state>/logs``), so a Ctrl-C of ``edp dev`` leaves nothing behind.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from edp.errors import ConfigError
from edp.settings import Settings
from edp_tools.local.processes import ManagedProcess

__all__ = [
    "Component",
    "Health",
    "Stack",
    "StackContext",
    "component",
    "registered_components",
]


@dataclass(frozen=True)
class Health:
    """A component's state as shown in the status table."""

    ok: bool
    detail: str = ""


@dataclass
class StackContext:
    """What components share while the stack runs.

    Attributes:
        settings: The platform settings ``edp dev`` was started with.
        state_dir: Absolute state folder (``.edp/`` by default).
        log_dir: Where child processes log (``<state>/logs``).
        env: Extra environment for every child process (components add to it).
        values: Facts published by earlier components for later ones.
        endpoints: What to show the user: name -> URL or host:port.
        port_base: First port for fixed-port services (functions), None = free ports.
    """

    settings: Settings
    state_dir: Path
    log_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    endpoints: dict[str, str] = field(default_factory=dict)
    port_base: int | None = None

    def export(self, **variables: str) -> None:
        """Set environment variables for every later child *and* for this process.

        The settings are re-read afterwards (:attr:`settings` is refreshed), so in-process
        components started later (creating topics, connecting clients) see the same values as
        the children, e.g. ``PUBSUB_EMULATOR_HOST``.
        """
        from edp.settings import get_settings

        self.env.update(variables)
        os.environ.update(variables)
        get_settings.cache_clear()
        self.settings = get_settings()

    def child_env(self) -> dict[str, str]:
        """Our environment plus :attr:`env` (what child processes get)."""
        return {**os.environ, **self.env}

    def spawn(
        self, name: str, argv: Sequence[str | os.PathLike[str]], **kwargs: Any
    ) -> ManagedProcess:
        """Start a child in its own process group, logging to ``<log_dir>/<name>.log``."""
        kwargs.setdefault("env", self.child_env())
        kwargs.setdefault("log_path", self.log_dir / f"{name.replace(':', '-')}.log")
        return ManagedProcess(name, argv, **kwargs).start()


class Component(ABC):
    """One part of the local stack (subclass, set the class attributes, register)."""

    name: ClassVar[str]
    order: ClassVar[int]
    description: ClassVar[str] = ""

    @abstractmethod
    def start(self, ctx: StackContext) -> None:
        """Start (and wait until ready); raise an :class:`~edp.errors.EdpError` on failure."""

    def stop(self) -> None:  # noqa: B027 - one-shot components have nothing to stop
        """Stop everything :meth:`start` started; must be safe to call twice."""

    def health(self) -> Health:
        """Current state (called every few seconds while the stack runs)."""
        return Health(True, "done")

    def processes(self) -> list[ManagedProcess]:
        """Child processes this component owns (reported in ``<state>/dev.json``)."""
        return []


_REGISTRY: dict[str, type[Component]] = {}
C = TypeVar("C", bound=type[Component])


def component(cls: C) -> C:
    """Class decorator registering a component under its ``name``.

    Raises:
        ConfigError: Another class already registered that name.
    """
    existing = _REGISTRY.get(cls.name)
    if existing is not None and existing.__qualname__ != cls.__qualname__:
        raise ConfigError(f"two stack components named {cls.name!r}")
    _REGISTRY[cls.name] = cls
    return cls


def registered_components() -> list[type[Component]]:
    """Every registered component, in start order (imports :mod:`edp_tools.local.components`)."""
    import edp_tools.local.components as package

    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")
    return sorted(_REGISTRY.values(), key=lambda c: (c.order, c.name))


class Stack:
    """Starts components in order, reports their health, stops them in reverse order.

    Args:
        ctx: The shared context.
        components: Component classes to run (default: every registered one).
        on_event: Called with (component name, event, detail) for progress output.
    """

    def __init__(
        self,
        ctx: StackContext,
        components: Sequence[type[Component]] | None = None,
        on_event: Callable[[str, str, str], None] | None = None,
    ) -> None:
        self.ctx = ctx
        self.classes = list(components if components is not None else registered_components())
        self.started: list[Component] = []
        self._on_event = on_event or (lambda name, event, detail: None)

    def start(self) -> None:
        """Start every component; on a failure stop the ones already started and re-raise."""
        for cls in self.classes:
            instance = cls()
            self._on_event(cls.name, "starting", cls.description)
            try:
                instance.start(self.ctx)
            except BaseException:
                self.started.append(instance)  # stop() whatever it managed to start
                self._on_event(cls.name, "failed", "")
                self.stop()
                raise
            self.started.append(instance)
            self._on_event(cls.name, "started", instance.health().detail)

    def health(self) -> dict[str, Health]:
        """Health of every started component, by name."""
        out: dict[str, Health] = {}
        for instance in self.started:
            try:
                out[instance.name] = instance.health()
            except Exception as exc:  # a broken health check is itself unhealthy
                out[instance.name] = Health(False, f"health check failed: {exc}")
        return out

    def pids(self) -> dict[str, int]:
        """Pids of every child process, by process name."""
        return {
            proc.name: proc.pid
            for instance in self.started
            for proc in instance.processes()
            if proc.pid is not None
        }

    def stop(self) -> None:
        """Stop started components in reverse order (errors are reported, not raised)."""
        while self.started:
            instance = self.started.pop()
            self._on_event(instance.name, "stopping", "")
            try:
                instance.stop()
            except Exception as exc:
                self._on_event(instance.name, "stop-failed", str(exc))
            else:
                self._on_event(instance.name, "stopped", "")
