"""The official Google Cloud Pub/Sub emulator as a managed local process.

The emulator ships with the Google Cloud CLI (component ``pubsub-emulator``). We start its launcher
script directly (not ``gcloud beta emulators pubsub start``, which adds a Python wrapper and a
second JVM-less process layer) in its own process group, on a free loopback port, and call it
ready when its HTTP root answers ``Ok``. The real ``google-cloud-pubsub`` client reaches it through
``PUBSUB_EMULATOR_HOST``.

Its JVM runs the Z garbage collector (:data:`JVM_OPTS`, through the launcher's own
``CLOUD_PUBSUB_EMULATOR_OPTS``; a value already in the environment wins). With the JVM's default
(G1) on the 2-core bench machine, at 1,180 publishes/s the emulator stopped for a young
collection of 20-36 ms every 4-15 s (its ``-Xlog:gc``), and every publish in flight waited:
that, not ingest, was most of the ingest p99 tail. Pub/Sub itself has no such pauses.

Example (needs Java and the emulator):
    >>> with PubSubEmulator() as emulator:          # doctest: +SKIP
    ...     os.environ.update(emulator.env())
"""

from __future__ import annotations

import os
import shutil
import urllib.request
from pathlib import Path
from types import TracebackType

from edp.errors import ConfigError
from edp_tools.local.processes import ManagedProcess, ProcessError, free_port

__all__ = ["JVM_OPTS", "PubSubEmulator", "find_emulator"]

#: The emulator JVM's options: a concurrent collector, pauses under a millisecond.
JVM_OPTS = "-XX:+UseZGC"

_CANDIDATES = (
    "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator",
    "/usr/share/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator",
    "/opt/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator",
)


def find_emulator() -> Path:
    """Locate the ``cloud-pubsub-emulator`` launcher of the installed Google Cloud CLI.

    Looks next to ``gcloud`` on the PATH, then in the usual install folders.

    Raises:
        ConfigError: When the component is not installed (with the install command).
    """
    candidates: list[Path] = []
    gcloud = shutil.which("gcloud")
    if gcloud is not None:
        sdk_root = Path(gcloud).resolve().parent.parent
        candidates.append(sdk_root / "platform/pubsub-emulator/bin/cloud-pubsub-emulator")
    candidates.extend(Path(c) for c in _CANDIDATES)
    home_sdk = Path.home() / "google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator"
    candidates.append(home_sdk)
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise ConfigError(
        "Pub/Sub emulator not found; install it with "
        "`gcloud components install pubsub-emulator` (or apt `google-cloud-cli-pubsub-emulator`)"
        " and make sure Java 17+ is on the PATH"
    )


class PubSubEmulator:
    """A running Pub/Sub emulator on ``127.0.0.1:<free port>``.

    Args:
        project: Project id clients should use (the emulator accepts any).
        port: Port to bind (default: a free one).
        log_path: Where the emulator's output goes (default: a temporary file).
        startup_timeout: Seconds to wait for the HTTP root to answer.
    """

    def __init__(
        self,
        project: str = "edp-local",
        *,
        port: int | None = None,
        log_path: str | os.PathLike[str] | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        self.project = project
        self._requested_port = port
        self.port = port or 0
        self.log_path = log_path
        self.startup_timeout = startup_timeout
        self.process: ManagedProcess | None = None

    @property
    def host(self) -> str:
        """``host:port``, the value of ``PUBSUB_EMULATOR_HOST``."""
        return f"127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """Environment variables that point clients (and ``edp.settings``) at this emulator."""
        return {"PUBSUB_EMULATOR_HOST": self.host, "GOOGLE_CLOUD_PROJECT": self.project}

    def healthy(self) -> bool:
        """Whether the emulator's HTTP root answers ``Ok``."""
        try:
            with urllib.request.urlopen(f"http://{self.host}/", timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def start(self) -> PubSubEmulator:
        """Start the emulator and wait until it serves requests (retries once on a port race)."""
        launcher = find_emulator()
        attempts = 1 if self._requested_port else 2
        for attempt in range(attempts):
            self.port = self._requested_port or free_port()
            self.process = ManagedProcess(
                "pubsub-emulator",
                [launcher, "--host=127.0.0.1", f"--port={self.port}"],
                env={"CLOUD_PUBSUB_EMULATOR_OPTS": JVM_OPTS, **os.environ},
                log_path=self.log_path,
                stop_timeout=5.0,
            ).start()
            try:
                self.process.wait_ready(
                    self.healthy,
                    timeout=self.startup_timeout,
                    what=f"the Pub/Sub emulator on {self.host}",
                )
                return self
            except ProcessError:
                if attempt + 1 == attempts:
                    raise
        raise ProcessError("unreachable")  # pragma: no cover

    def stop(self) -> None:
        """Stop the emulator's process group."""
        if self.process is not None:
            self.process.stop()

    @property
    def running(self) -> bool:
        """Whether the emulator process is alive."""
        return self.process is not None and self.process.running

    def __enter__(self) -> PubSubEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
