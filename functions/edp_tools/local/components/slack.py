"""The local Slack webhook receiver as an ``edp dev`` component (before the functions start).

It records the quality agent's messages in ``<state>/slack/messages.jsonl`` and points
``EDP_SLACK_WEBHOOK_CRITICAL`` / ``EDP_SLACK_WEBHOOK_WARNING`` of every later process (the
served ``quality_check`` function, ``edp quality run``) at itself.
"""

from __future__ import annotations

import sys

from edp_tools.local.processes import ManagedProcess, free_port, port_open
from edp_tools.local.stack import Component, Health, StackContext, component


@component
class SlackReceiver(Component):
    """``python -m edp_tools.quality.webhook_receiver`` as a child process."""

    name = "slack-receiver"
    order = 45  # before the functions (50), so quality_check gets the webhook URLs
    description = "local Slack incoming webhooks (records messages)"

    def __init__(self) -> None:
        self.proc: ManagedProcess | None = None
        self.port = 0

    def start(self, ctx: StackContext) -> None:
        self.port = free_port()
        out = ctx.state_dir / "slack" / "messages.jsonl"
        self.proc = ctx.spawn(
            self.name,
            [
                sys.executable,
                "-m",
                "edp_tools.quality.webhook_receiver",
                "--port",
                str(self.port),
                "--out",
                str(out),
            ],
        )
        port = self.port
        self.proc.wait_ready(lambda: port_open("127.0.0.1", port), timeout=30)
        base = f"http://127.0.0.1:{port}"
        ctx.export(
            EDP_SLACK_WEBHOOK_CRITICAL=f"{base}/critical",
            EDP_SLACK_WEBHOOK_WARNING=f"{base}/warning",
        )
        ctx.endpoints[self.name] = base
        ctx.values["slack_messages"] = str(out)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()

    def health(self) -> Health:
        if self.proc is None or not self.proc.running:
            return Health(False, "not running")
        return Health(True, f"port {self.port}, messages in <state>/slack/messages.jsonl")

    def processes(self) -> list[ManagedProcess]:
        return [self.proc] if self.proc else []
