"""A person at a terminal: a command run on a pseudo-terminal that is its controlling
terminal (so ``getpass`` turns echo off on it as on a real one), typed into when a
prompt shows, and everything the terminal displayed kept, echo included."""

from __future__ import annotations

import os
import re
import select
import struct
import subprocess
import sys
import time

# The command's first step, in the child: take the pseudo-terminal (already its stdin, in
# a session of its own) as the controlling terminal, then become the real command.
_TAKE_TTY = (
    "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


class Terminal:
    def __init__(self, argv: list[str], env: dict[str, str], *, columns: int = 200) -> None:
        import fcntl
        import termios

        self._master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _TAKE_TTY, *argv],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={**env, "TERM": "dumb"},
            start_new_session=True,
        )
        os.close(slave)
        self.screen = ""
        """Everything the terminal displayed so far (output and echoed typing)."""
        self._seen = 0

    def expect(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        """Read until *pattern* (a regex) shows after what the last expect matched."""
        deadline = time.monotonic() + timeout
        while True:
            found = re.compile(pattern).search(self.screen, self._seen)
            if found is not None:
                self._seen = found.end()
                return found
            left = deadline - time.monotonic()
            if left <= 0 or not self._read(left):
                raise AssertionError(f"{pattern!r} never showed; the terminal:\n{self.screen}")

    def type(self, text: str) -> None:
        """Keys as typed, Enter included (a terminal sends a carriage return)."""
        os.write(self._master, text.encode() + b"\r")

    def finish(self, timeout: float = 60) -> int:
        """Read to the end; the command's exit status."""
        deadline = time.monotonic() + timeout
        while self._read(max(deadline - time.monotonic(), 0)):
            pass
        return self.proc.wait(max(deadline - time.monotonic(), 1))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self._master >= 0:
            os.close(self._master)
            self._master = -1

    def _read(self, timeout: float) -> bool:
        """Take what the terminal shows next; False at the end (or nothing in time)."""
        ready, _, _ = select.select([self._master], [], [], timeout)
        if not ready:
            return False
        try:
            data = os.read(self._master, 65536)
        except OSError:  # EIO: the command closed its side
            return False
        if not data:
            return False
        self.screen += data.decode("utf-8", "replace").replace("\r\n", "\n")
        return True
