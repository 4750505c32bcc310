"""Keep the connector host running where systemd is not PID 1: ``Restart=always``'s
stand-in.

``python -m airlock.service.keeper -- PROGRAM ARG…`` is what ``airlock service start``
runs, detached and as the host's own user. It starts PROGRAM and, whenever it ends
(crashed, killed, exited), starts it again: at once the first time, then after a pause
that doubles up to :attr:`Backoff.longest` while it keeps dying young, and from the
beginning again once it has run :attr:`Backoff.healthy_after` seconds. SIGTERM (``airlock
service stop``) is passed on to PROGRAM; the keeper waits for it and exits 0.

The keeper has nothing the host has not: same user, no secret (PROGRAM's arguments carry
none), no privilege. Its output and PROGRAM's go to the log it was given as stdout.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Protocol

STOP_GRACE = 10.0
"""Seconds PROGRAM has to exit after SIGTERM before it is killed."""


class Child(Protocol):
    pid: int

    def wait(self, timeout: float | None = None) -> int: ...

    def send_signal(self, sig: int) -> None: ...

    def kill(self) -> None: ...


@dataclass
class Backoff:
    """How long to pause before the next start, from how long the last run lasted."""

    first: float = 0.0
    step: float = 0.5
    longest: float = 10.0
    healthy_after: float = 60.0
    _next: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self._next = self.first

    def after(self, ran_for: float) -> float:
        """The pause before starting again, after a run of *ran_for* seconds."""
        if ran_for >= self.healthy_after:
            self._next = self.first
        pause = self._next
        self._next = min(self.longest, max(self.step, pause * 2))
        return pause


@dataclass
class Keeper:
    argv: Sequence[str]
    spawn: Callable[[Sequence[str]], Child] = field(
        default=lambda argv: subprocess.Popen(list(argv), stdin=subprocess.DEVNULL)
    )
    clock: Callable[[], float] = time.monotonic
    pause: Callable[[float], None] = time.sleep
    say: Callable[[str], None] = field(default=lambda line: print(line, flush=True))
    backoff: Backoff = field(default_factory=Backoff)
    stopping: bool = False
    child: Child | None = None
    starts: int = 0

    def stop(self, signum: int = signal.SIGTERM, frame: FrameType | None = None) -> None:
        """Stop keeping: pass SIGTERM on to the running program (a signal handler)."""
        self.stopping = True
        if self.child is not None:
            with contextlib.suppress(ProcessLookupError):
                self.child.send_signal(signal.SIGTERM)

    def _stopped(self) -> bool:
        """Read afresh each time: a signal handler sets it."""
        return self.stopping

    def run(self, *, most: int | None = None) -> int:
        """Start the program again and again until :meth:`stop` (or *most* starts)."""
        while not self._stopped() and (most is None or self.starts < most):
            began = self.clock()
            try:
                self.child = self.spawn(self.argv)
            except OSError as exc:
                self.say(f"keeper: cannot start {self.argv[0]}: {exc.strerror}")
                self.child = None
                status: int | str = "not started"
            else:
                self.starts += 1
                self.say(f"keeper: started {self.argv[0]} (pid {self.child.pid})")
                if self._stopped():  # SIGTERM came while it was being started
                    self.stop()
                status = self.child.wait()
            if self._stopped():
                break
            wait = self.backoff.after(self.clock() - began)
            self.say(f"keeper: it ended ({_describe(status)}); starting it again in {wait:g} s")
            self._pause(wait)
        self._finish()
        return 0

    def _pause(self, seconds: float) -> None:
        """Pause in short steps so a SIGTERM ends the pause at once."""
        end = self.clock() + seconds
        while not self._stopped() and self.clock() < end:
            self.pause(min(0.1, end - self.clock()))

    def _finish(self) -> None:
        child = self.child
        if child is None:
            return
        try:
            child.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            self.say(f"keeper: pid {child.pid} ignored SIGTERM for {STOP_GRACE:g} s: killing it")
            with contextlib.suppress(ProcessLookupError):
                child.kill()
            child.wait()


def _describe(status: int | str) -> str:
    if isinstance(status, str):
        return status
    if status < 0:
        try:
            return f"killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return f"exit status {status}"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        print("usage: python -m airlock.service.keeper -- PROGRAM [ARG…]", file=sys.stderr)
        return 2
    keeper = Keeper(args)
    signal.signal(signal.SIGTERM, keeper.stop)
    signal.signal(signal.SIGINT, keeper.stop)
    return keeper.run()


if __name__ == "__main__":
    sys.exit(main())
