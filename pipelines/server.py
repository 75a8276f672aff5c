"""A local ``prefect server start`` on 127.0.0.1 and a free port, for ``retroingest serve`` and tests.

Cron schedules need a long-running server: the ephemeral server Prefect starts per process
never schedules (../shared/reference/stack_offline.md, section 4). Offline settings are applied
here: no telemetry, a generous startup timeout, PREFECT_HOME in a known folder.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

OFFLINE_ENV = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
}


def offline_env(prefect_home: str | os.PathLike) -> dict[str, str]:
    """Environment for Prefect on these machines; existing variables win except PREFECT_HOME."""
    env = {k: os.environ.get(k, v) for k, v in OFFLINE_ENV.items()}
    env["PREFECT_HOME"] = str(prefect_home)
    return env


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(api_url: str, timeout: float = 2.0) -> bool:
    """True when ``<api_url>/health`` answers."""
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=timeout) as r:
            return r.status == 200
    except OSError:
        return False


class LocalServer:
    """A ``prefect server start`` subprocess; ``api_url`` is what PREFECT_API_URL should be."""

    def __init__(self, prefect_home: str | os.PathLike, port: int | None = None):
        self.home = Path(prefect_home)
        self.port = port or free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.log_path = self.home / "server.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 120.0) -> "LocalServer":
        """Start the server and wait until /api/health answers (a cold start takes 10-40 s here)."""
        self.home.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **offline_env(self.home)}
        env.pop("PREFECT_API_URL", None)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not healthy(self.api_url):
            if self.proc.poll() is not None:
                raise RuntimeError(f"prefect server exited with {self.proc.returncode}; see {self.log_path}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"prefect server not healthy after {timeout:.0f} s; see {self.log_path}")
            time.sleep(0.5)
        return self

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 15 s."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def __enter__(self) -> "LocalServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
