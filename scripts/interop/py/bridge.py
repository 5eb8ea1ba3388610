"""Starts mcp-http-bridge on a free port and hands back the URL it prints when ready.

Binaries come from BRIDGE_BIN, FIXTURE_BIN (the session-era child, fake-mcp-server) and
MODERN_FIXTURE_BIN (the 2026-07-28 child, modern-mcp-server), by default the repo's
target/debug builds.
"""

import json
import os
import queue
import re
import signal
import subprocess
import tempfile
import threading
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
BRIDGE_BIN = os.environ.get("BRIDGE_BIN") or str(REPO_ROOT / "target" / "debug" / "mcp-http-bridge")
FIXTURE_BIN = os.environ.get("FIXTURE_BIN") or str(REPO_ROOT / "target" / "debug" / "fake-mcp-server")
MODERN_FIXTURE_BIN = os.environ.get("MODERN_FIXTURE_BIN") or str(REPO_ROOT / "target" / "debug" / "modern-mcp-server")
CHILDREN = {"legacy": FIXTURE_BIN, "modern": MODERN_FIXTURE_BIN}
"""The child each era test runs the bridge in front of, by the child's era."""


class Bridge:
    def __init__(self, child: list[str], ready_timeout: float = 20.0, args: tuple[str, ...] = ()):
        self._stderr = tempfile.TemporaryFile(mode="w+b")
        self.proc = subprocess.Popen(
            [BRIDGE_BIN, "--port", "0", *args, "--", *child],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        lines: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=lambda: lines.put(self.proc.stdout.readline()), daemon=True).start()
        try:
            line = lines.get(timeout=ready_timeout).decode().strip()
        except queue.Empty:
            self.stop()
            raise RuntimeError(f"bridge printed no URL within {ready_timeout}s\n{self.stderr_tail()}")
        if not re.fullmatch(r"http://.+/mcp", line):
            self.stop()
            raise RuntimeError(f"bridge's first stdout line is {line!r}, not a /mcp URL\n{self.stderr_tail()}")
        self.url = line
        self.base_url = line[: -len("/mcp")]

    def health(self) -> dict:
        """The bridge's /health document (children, sessions, pending requests)."""
        with urllib.request.urlopen(self.base_url + "/health", timeout=5) as response:
            return json.load(response)

    def stderr_tail(self, lines: int = 40) -> str:
        self._stderr.seek(0)
        return "\n".join(self._stderr.read().decode(errors="replace").rstrip().splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc.stdout.close()
