"""A headless Chromium driven through the DevTools protocol over a pipe (``--remote-debugging-pipe``): no driver, no
websocket library, nothing downloaded; only a Chromium (Debian: ``apt-get install chromium``) on the PATH.

Chromium reads protocol commands on its file descriptor 3 and writes replies and events on 4, each message a JSON
object ended by a NUL byte. :class:`Browser` opens one page and offers what the report check needs: navigate,
evaluate JavaScript, wait for a condition, and capture a screenshot.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")
# Offline, no profile, no sandbox (root in containers), no GPU: what a CI machine can run.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
)


class BrowserError(RuntimeError):
    """Chromium is missing, died, or a page did not behave."""


def find_chromium(explicit: str | None = None) -> str:
    """The Chromium executable: ``explicit``, $CHROMIUM, or the first of :data:`CHROMIUM_NAMES` on the PATH."""
    for name in (explicit, os.environ.get("CHROMIUM"), *CHROMIUM_NAMES):
        if name and (path := shutil.which(name)):
            return path
    raise BrowserError(
        "no Chromium found (install it, e.g. `apt-get install -y chromium`, or set $CHROMIUM to its executable)"
    )


class Browser:
    """One headless Chromium with one page of ``width`` × ``height`` CSS pixels; use as a context manager."""

    def __init__(self, chromium: str | None = None, *, width: int = 1400, height: int = 1000, timeout: float = 60):
        self.executable = find_chromium(chromium)
        self.width, self.height, self.timeout = width, height, timeout
        self._next_id = 0
        self._buffer = b""

    def __enter__(self) -> Browser:
        self._profile = tempfile.TemporaryDirectory(prefix="reportcheck-profile-")
        self._log = tempfile.TemporaryFile()  # Chromium's stderr (a pipe nobody drains could fill and stall it)
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def fds_3_and_4():  # in the child, before exec: the pipe ends where Chromium expects them, inheritable
            read_end, write_end = os.dup(to_chrome_r), os.dup(from_chrome_w)  # above 4, so neither is overwritten
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)

        self._proc = subprocess.Popen(
            [self.executable, *FLAGS, f"--user-data-dir={self._profile.name}", f"--window-size={self.width},{self.height}",
             "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._log,
            preexec_fn=fds_3_and_4, close_fds=False,
        )  # fmt: skip
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        target = self._call("Target.createTarget", url="about:blank")["targetId"]
        self._session = self._call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.send("Page.enable")
        self.send("Runtime.enable")
        self.send("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height, deviceScaleFactor=1,
                  mobile=False)  # fmt: skip
        return self

    def __exit__(self, *exc) -> None:
        try:
            self._call("Browser.close")
        except BrowserError:
            pass
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._log.close()
        for fd in (self._to_chrome, self._from_chrome):
            os.close(fd)
        self._profile.cleanup()

    # ------------------------------------------------------------------------------------------------ protocol
    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise BrowserError("Chromium did not answer in time")
            chunk = os.read(self._from_chrome, 1 << 16)
            if not chunk:
                self._log.seek(0)
                err = self._log.read().decode(errors="replace")[-2000:]
                raise BrowserError(f"Chromium closed the protocol pipe (exit {self._proc.poll()}): {err}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def _call(self, method: str, session: str | None = None, **params) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error'].get('message')}")
                return reply.get("result", {})

    def send(self, method: str, **params) -> dict:
        """A protocol command to the page."""
        return self._call(method, self._session, **params)

    # ------------------------------------------------------------------------------------------------ page
    def navigate(self, url: str) -> None:
        self.send("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete'", what=f"{url} to load")

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression[:80]}…: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def wait_for(self, expression: str, *, what: str, timeout: float | None = None) -> None:
        """Poll until the expression is truthy."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while not self.evaluate(expression):
            if time.monotonic() > deadline:
                raise BrowserError(f"timed out waiting for {what}")
            time.sleep(0.2)

    def screenshot(self, path: str | Path, *, full_page: bool = False) -> Path:
        """A PNG of the viewport (or of the whole page)."""
        params = {"format": "png"}
        if full_page:
            size = self.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
            params["clip"] = {"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1}
            params["captureBeyondViewport"] = True
        data = self.send("Page.captureScreenshot", **params)["data"]
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path
