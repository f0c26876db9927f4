"""Load a rendered report in a real headless browser (Chromium, driven over the DevTools
protocol) and say what a person would see: console errors, network requests, whether script
ran, whether the page fits the window, and a screenshot. Used by the browser tests and by
scripts/report_screenshots.py; needs `chromium` on PATH and the `websocket-client` package
(`pip install 'harness[browser]'`)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import require

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")


def find_browser() -> str | None:
    """The first Chromium-family browser on PATH."""
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageCheck:
    """What loading the page produced."""

    console_errors: list[str] = field(default_factory=list)
    """Console errors and uncaught exceptions."""
    requests: list[str] = field(default_factory=list)
    """Every URL the page asked for beyond itself (a self-contained report asks for none)."""
    scroll_width: int = 0
    viewport_width: int = 0
    evaluated: dict = field(default_factory=dict)
    """Results of the expressions passed to check()."""

    @property
    def fits(self) -> bool:
        """No sideways scrolling of the page itself (wide tables scroll inside their box)."""
        return self.scroll_width <= self.viewport_width


class _Session:
    def __init__(self, ws):
        self.ws, self.next_id, self.events = ws, 0, []

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30.0) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error'].get('message')}")
                return reply.get("result", {})
            self.events.append(reply)
        raise TimeoutError(f"{method}: no reply in {timeout:.0f}s")

    def wait_for(self, method: str, timeout: float = 30.0) -> dict:
        for i, e in enumerate(self.events):
            if e.get("method") == method:
                return self.events.pop(i)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            e = json.loads(self.ws.recv())
            if e.get("method") == method:
                return e
            self.events.append(e)
        raise TimeoutError(f"no {method} in {timeout:.0f}s")


def check(page: Path | str, width: int = 1280, height: int = 900, screenshot: Path | None = None,
          expressions: dict[str, str] | None = None, browser: str | None = None, max_height: int | None = None,
          media: str | None = None) -> PageCheck:
    """Open `page` (a file, or an http:// URL) at this window size, let it settle, and report what
    happened; optionally save a PNG of the page (its top `max_height` pixels, or all of it).
    `expressions`: name -> JavaScript evaluated in the page afterwards. `media: "print"` lays the
    page out as printed."""
    with session(browser) as cdp:
        return _run(cdp, page, width, height, screenshot, expressions or {}, max_height, media)


@contextmanager
def session(browser: str | None = None) -> Iterator[_Session]:
    """A headless Chromium for the length of the block, driven over the DevTools protocol: pass it
    to Tab() to open pages in it (several pages, clicks and navigation in one browser)."""
    websocket = require("websocket", "checking pages in a browser", "browser")
    exe = browser or find_browser()
    if exe is None:
        raise FileNotFoundError("no Chromium on PATH (apt-get install chromium)")
    profile = Path(tempfile.mkdtemp(prefix="harness-browser-"))
    proc = subprocess.Popen([exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
                             "--disable-background-networking", "--disable-component-update", "--disable-sync",
                             "--remote-debugging-port=0", f"--user-data-dir={profile}", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or len(port_file.read_text().split()) < 2:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"{exe} did not start its DevTools endpoint")
            time.sleep(0.05)
        port, path = port_file.read_text().split()[:2]
        ws = websocket.create_connection(f"ws://127.0.0.1:{port}{path}", timeout=30, suppress_origin=True)
        try:
            yield _Session(ws)
        finally:
            ws.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(profile, ignore_errors=True)


class Tab:
    """One page of a browser session(): go to URLs, evaluate script, click, as a person would."""

    def __init__(self, cdp: _Session, width: int = 1280, height: int = 900, media: str | None = None):
        self.cdp, self.width = cdp, width
        target = cdp.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.sid = cdp.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            cdp.send(f"{domain}.enable", session=self.sid)
        cdp.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                        "mobile": width < 700}, session=self.sid)
        if media:
            cdp.send("Emulation.setEmulatedMedia", {"media": media}, session=self.sid)

    def goto(self, url: str) -> None:
        """Load `url` and wait for its load event."""
        self.cdp.send("Page.navigate", {"url": url}, session=self.sid)
        self.cdp.wait_for("Page.loadEventFired")
        time.sleep(0.3)  # let late errors or requests arrive

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page."""
        value = self.cdp.send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=self.sid)
        return value.get("result", {}).get("value")

    def click(self, selector: str) -> str:
        """Click the first element matching `selector` (a link or a form's submit button), wait for
        the page it leads to, and return its URL."""
        found = self.evaluate(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); if (!e) return false; "
                              "e.click(); return true; })()")
        if not found:
            raise LookupError(f"no element matches {selector!r} on {self.evaluate('location.href')}")
        self.cdp.wait_for("Page.loadEventFired")
        time.sleep(0.3)
        return self.evaluate("location.href")

    def screenshot(self, out: Path, max_height: int | None = None) -> None:
        """A PNG of the page: its top `max_height` pixels, or all of it."""
        import base64

        full = self.cdp.send("Page.getLayoutMetrics", session=self.sid)["cssContentSize"]
        shot = self.cdp.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                        "clip": {"x": 0, "y": 0, "width": self.width, "scale": 1,
                                                                 "height": min(full["height"], max_height or full["height"])}},
                             session=self.sid, timeout=60)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(base64.b64decode(shot["data"]))

    def result(self, own_url: str) -> PageCheck:
        """What the page did so far: console errors, requests beyond `own_url`, its width."""
        result = PageCheck(viewport_width=self.width)
        result.scroll_width = self.evaluate("document.documentElement.scrollWidth")
        for e in self.cdp.events:
            method, params = e.get("method"), e.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                result.console_errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                result.console_errors.append(params.get("exceptionDetails", {}).get("text", "exception"))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                result.console_errors.append(params["entry"].get("text", ""))
            elif method == "Network.requestWillBeSent":
                requested = params.get("request", {}).get("url", "")
                if not requested.startswith(own_url) and not requested.startswith("data:"):
                    result.requests.append(requested)
        return result


def _run(cdp: _Session, page: Path | str, width: int, height: int, screenshot: Path | None, expressions: dict,
         max_height: int | None, media: str | None = None) -> PageCheck:
    tab = Tab(cdp, width, height, media)
    url = page if isinstance(page, str) else page.resolve().as_uri()
    tab.goto(url)
    evaluated = {name: tab.evaluate(expr) for name, expr in expressions.items()}
    if screenshot is not None:
        tab.screenshot(screenshot, max_height)
    result = tab.result(url)
    result.evaluated = evaluated
    return result
