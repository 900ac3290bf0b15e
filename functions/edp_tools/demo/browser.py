"""Open the demo report in a real headless Chromium (Debian's ``chromium``) over DevTools.

Used by ``tests/demo`` (did every chart draw? any console error?) and by ``nox -s
screenshot`` (the README's picture). No browser download: it starts the system's
``/usr/bin/chromium`` with a throwaway profile and talks the DevTools protocol over a
websocket (``websocket-client``).

    python -m edp_tools.demo.browser check docs/demo/index.html
    python -m edp_tools.demo.browser screenshot docs/demo/index.html docs/demo-screenshot.png
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edp.errors import ConfigError, EdpError

#: Flags for a quiet, offline, sandbox-free headless run (root in CI).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
    # Chromium >= 111 refuses DevTools websockets from other origins without this (403).
    "--remote-allow-origins=*",
)

#: Per chart: how many plotly traces, data values and drawn marks it has.
_CHART_PROBE = """
(() => {
  const out = [];
  for (const fig of document.querySelectorAll('figure.chart')) {
    const gd = fig.querySelector('.js-plotly-plot');
    const row = {id: fig.dataset.chart, traces: 0, values: 0, svgs: 0, marks: 0};
    if (gd && gd._fullData) {
      row.traces = gd._fullData.length;
      for (const t of gd._fullData) {
        const v = t.z || t.x || t.y || [];
        row.values += v.length || 0;
      }
      row.svgs = gd.querySelectorAll('svg.main-svg').length;
      row.marks = gd.querySelectorAll(
        'path.js-line, g.point, .hm image, .heatmaplayer image, .scatterlayer path.point'
      ).length;
    }
    out.push(row);
  }
  return JSON.stringify(out);
})()
"""


class BrowserError(EdpError):
    """Chromium could not be started or did not answer."""


def find_chromium() -> str:
    """The system Chromium binary.

    Raises:
        ConfigError: None installed (``apt-get install chromium``).
    """
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise ConfigError("no chromium found: install Debian's package (apt-get install chromium)")


@dataclass
class PageReport:
    """What the page did: chart probes and every console error/exception."""

    charts: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class Chromium:
    """A headless Chromium with one page, driven over the DevTools protocol.

    Use as a context manager; the browser and its profile folder are removed on exit.
    """

    def __init__(self, width: int = 1400, height: int = 1800) -> None:
        self.width, self.height = width, height
        self._ids = itertools.count(1)
        self.errors: list[str] = []

    def __enter__(self) -> Chromium:
        import websocket

        self._profile = tempfile.mkdtemp(prefix="edp-chromium-")
        self.proc = subprocess.Popen(
            [
                find_chromium(),
                *CHROMIUM_FLAGS,
                f"--user-data-dir={self._profile}",
                "--remote-debugging-port=0",
                f"--window-size={self.width},{self.height}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            port = self._devtools_port()
            self.ws = websocket.create_connection(self._page_ws_url(port), timeout=60)
            self.call("Runtime.enable")
            self.call("Log.enable")
            self.call("Page.enable")
            self.call(
                "Emulation.setDeviceMetricsOverride",
                width=self.width,
                height=self.height,
                deviceScaleFactor=1,
                mobile=False,
            )
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        ws = getattr(self, "ws", None)
        if ws is not None:
            ws.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        shutil.rmtree(self._profile, ignore_errors=True)

    def _devtools_port(self) -> int:
        marker = Path(self._profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BrowserError(f"chromium exited with {self.proc.returncode}")
            if marker.exists():
                text = marker.read_text().split()
                if text:
                    return int(text[0])
            time.sleep(0.05)
        raise BrowserError("chromium did not open its DevTools port within 30 s")

    @staticmethod
    def _page_ws_url(port: int) -> str:
        import urllib.request

        deadline = time.monotonic() + 15
        while True:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
                targets = json.loads(r.read())
            pages = [t for t in targets if t.get("type") == "page"]
            if pages:
                return str(pages[0]["webSocketDebuggerUrl"])
            if time.monotonic() > deadline:
                raise BrowserError("chromium has no page target")
            time.sleep(0.1)

    def _event(self, message: dict[str, Any]) -> None:
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text")
            self.errors.append(f"exception: {text}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            args = [str(a.get("value", a.get("description", ""))) for a in params.get("args", [])]
            self.errors.append("console.error: " + " ".join(args))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            self.errors.append(f"log: {entry.get('text')} ({entry.get('url', '')})")

    def call(self, method: str, timeout_s: float = 60.0, **params: Any) -> dict[str, Any]:
        """Send one DevTools command and return its result (events seen meanwhile are kept)."""
        msg_id = next(self._ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            message = json.loads(self.ws.recv())
            if message.get("id") == msg_id:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))
            self._event(message)
        raise BrowserError(f"{method}: no answer within {timeout_s} s")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"evaluate failed: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    def open(self, path: Path, settle_s: float = 1.0) -> None:
        """Load a local file and wait until it and its charts are drawn."""
        self.call("Page.navigate", url=path.absolute().as_uri())
        deadline = time.monotonic() + 60
        while self.evaluate("document.readyState") != "complete":
            if time.monotonic() > deadline:
                raise BrowserError(f"{path} did not finish loading within 60 s")
            time.sleep(0.1)
        time.sleep(settle_s)  # plotly draws after load; let it and any late errors happen
        self.evaluate("1")  # drain pending events into self.errors

    def screenshot(self, out: Path) -> None:
        """PNG of the viewport."""
        data = self.call("Page.captureScreenshot", format="png")["data"]
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(base64.b64decode(data))


def check_report(path: Path) -> PageReport:
    """Open ``path`` in Chromium; probe every chart; collect console errors."""
    with Chromium() as browser:
        browser.open(path)
        charts = json.loads(browser.evaluate(_CHART_PROBE))
        return PageReport(charts=charts, errors=list(browser.errors))


def screenshot(path: Path, out: Path, width: int = 1400, height: int = 1800) -> PageReport:
    """Open ``path`` and save a PNG of its top ``width`` x ``height`` pixels to ``out``."""
    with Chromium(width, height) as browser:
        browser.open(path)
        browser.screenshot(out)
        charts = json.loads(browser.evaluate(_CHART_PROBE))
        return PageReport(charts=charts, errors=list(browser.errors))


def main(argv: list[str] | None = None) -> int:
    """``check REPORT`` or ``screenshot REPORT PNG``; exit 1 on console errors or empty
    charts."""
    args = argv if argv is not None else sys.argv[1:]
    if len(args) < 2 or args[0] not in ("check", "screenshot"):
        print(__doc__, file=sys.stderr)
        return 2
    report = (
        check_report(Path(args[1]))
        if args[0] == "check"
        else screenshot(Path(args[1]), Path(args[2]))
    )
    bad = [c["id"] for c in report.charts if not (c["svgs"] and c["values"] and c["marks"])]
    print(json.dumps({"charts": report.charts, "errors": report.errors}, indent=2))
    return 1 if bad or report.errors or not report.charts else 0


if __name__ == "__main__":
    sys.exit(main())
