"""A daemon process for one AIRLOCK_HOME, started and stopped from Python.

The demo, the end-to-end tests and the benchmarks run the real `airlock serve` this way:
a child process on a real socket, its output in a log file, stopped with SIGTERM.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from airlock.errors import DaemonUnreachable
from airlock.settings.paths import AirlockPaths, resolve_paths


def answering_pid(socket_path: Path) -> int | None:
    """The pid of the daemon answering ``/v1/status`` on *socket_path*, if one does."""
    import httpx

    transport = httpx.HTTPTransport(uds=str(socket_path))
    try:
        with httpx.Client(transport=transport, base_url="http://airlock", timeout=5) as http:
            status = http.get("/v1/status").json()
    except (httpx.HTTPError, ValueError, OSError):
        return None
    pid = status.get("pid") if isinstance(status, dict) else None
    return pid if isinstance(pid, int) else None


class LocalDaemon:
    def __init__(
        self, home: Path, *, log: Path | None = None, command: list[str] | None = None
    ) -> None:
        self.home = home
        # Tests may run the same server with extra plugins (a launcher of their own). -P:
        # not from the working directory (``airlock demo`` run in /tmp), where another
        # user may have put a package named airlock.
        self.command = command or [sys.executable, "-P", "-m", "airlock", "serve"]
        self.env = {**os.environ, "AIRLOCK_HOME": str(home)}
        self.paths: AirlockPaths = resolve_paths(self.env)
        self.log = log or home / "daemon.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *, timeout: float = 60.0) -> Self:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.command,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = self.log.read_text(errors="replace")[-2000:]
                self.stop()
                raise DaemonUnreachable(f"the daemon did not start:\n{tail}")
            time.sleep(0.02)
        return self

    def _answers(self) -> bool:
        """Our process (not another daemon on the same socket) answers ``/v1/status``."""
        return self.proc is not None and answering_pid(self.paths.socket) == self.proc.pid

    def stop(self, *, timeout: float = 15.0) -> int:
        """SIGTERM (a graceful shutdown), SIGKILL if it does not end in time."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.proc = None
        return code

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
