"""Headless Chromium for the documentation tests, driven over a pipe.

The DevTools protocol over `--remote-debugging-pipe` needs no Python package
and no network port; `tests/test_docs_site.py` uses it to type into the
search box of the built site.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import time
from http.server import SimpleHTTPRequestHandler
from pathlib import Path

__all__ = ["Browser", "QuietHandler", "chromium_binary"]


def chromium_binary() -> str | None:
    candidates = [os.environ.get("CHROMIUM", "")]
    candidates += ["chromium", "chromium-browser", "google-chrome", "chrome"]
    for name in candidates:
        path = name and shutil.which(name)
        if path:
            return path
    return None


def above(fd: int, lowest: int) -> int:
    """A copy of `fd` numbered at least `lowest`; `fd` itself is closed."""
    copy = fcntl.fcntl(fd, fcntl.F_DUPFD, lowest)
    os.close(fd)
    return copy


class Browser:
    """Headless Chromium driven over the DevTools protocol on a pipe."""

    def __init__(self, binary: str, profile: Path) -> None:
        commands_in, self._commands = os.pipe()
        self._replies, replies_out = os.pipe()
        # Number the browser's ends above 4, so that moving one to 3 or 4
        # cannot overwrite the other.
        commands_in, replies_out = (
            above(commands_in, 10),
            above(replies_out, 10),
        )
        args = [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        # The browser reads commands on its fd 3 and writes replies on its
        # fd 4; a Python trampoline puts the pipes there and starts it.
        trampoline = (
            "import os, sys; os.dup2(int(sys.argv[1]), 3); "
            "os.dup2(int(sys.argv[2]), 4); os.execv(sys.argv[3], sys.argv[3:])"
        )
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                trampoline,
                str(commands_in),
                str(replies_out),
                *args,
            ],
            pass_fds=(commands_in, replies_out),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(commands_in)
        os.close(replies_out)
        self._buffer = b""
        self._id = 0
        self.events: list[dict] = []
        try:
            target = self.send("Target.createTarget", url="about:blank")
            self.session = self.send(
                "Target.attachToTarget", targetId=target["targetId"], flatten=True
            )["sessionId"]
            for domain in ("Page", "Runtime", "Network"):
                self.send(f"{domain}.enable", session=self.session)
        except (OSError, RuntimeError):
            self.close()
            raise

    def _message(self, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._replies], [], [], left)[0]:
                raise TimeoutError("the browser did not answer")
            chunk = os.read(self._replies, 1 << 16)
            if not chunk:
                raise RuntimeError("the browser closed its pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, session: str | None = None, **params) -> dict:
        self._id += 1
        message = {"id": self._id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._message()
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def evaluate(self, expression: str):
        result = self.send(
            "Runtime.evaluate",
            session=self.session,
            expression=expression,
            returnByValue=True,
        )
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        return self.evaluate(expression)

    def type(self, text: str) -> None:
        """Key presses, one character at a time, into the focused element."""
        for char in text:
            for kind in ("keyDown", "keyUp"):
                self.send(
                    "Input.dispatchKeyEvent",
                    session=self.session,
                    type=kind,
                    key=char,
                    **({"text": char} if kind == "keyDown" else {}),
                )

    def open(self, url: str) -> None:
        self.send("Page.navigate", session=self.session, url=url)
        assert self.wait_for("document.readyState === 'complete'"), f"{url} hangs"

    def requested(self) -> set[str]:
        return {
            event["params"]["request"]["url"]
            for event in self.events
            if event.get("method") == "Network.requestWillBeSent"
        }

    def close(self) -> None:
        with contextlib.suppress(OSError, RuntimeError):
            self.send("Browser.close")
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._commands)
        os.close(self._replies)


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass
