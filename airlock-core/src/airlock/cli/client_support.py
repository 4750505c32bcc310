"""What the client commands share: a daemon client, the TOTP prompt, the approval wait."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from airlock.errors import InvalidInput

if TYPE_CHECKING:
    from airlock.cli.context import CliState
    from airlock.client import AirlockClient
    from airlock.clients._wallet import WaitStatus

T = TypeVar("T")
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def with_client(state: CliState, work: Callable[[AirlockClient], Awaitable[T]]) -> T:
    """Run *work* with a client of this home's daemon, then close it. With no socket (no
    daemon) DaemonUnreachable is raised before the client and asyncio are imported."""
    from airlock.clients._reach import no_socket

    missing = no_socket(state.paths.socket)
    if missing is not None:
        raise missing
    import asyncio

    from airlock.client import AirlockClient

    async def main() -> T:
        async with AirlockClient(state.paths.socket, agent="airlock-cli") as client:
            return await work(client)

    return asyncio.run(main())


CODE_ON_STDIN = (
    "type it when asked (hidden), or send it as the first line of stdin, "
    'e.g. `read -s CODE; echo "$CODE" | airlock approve AB12`'
)


def read_totp(*, prompt: str = "TOTP code from your authenticator") -> str:
    """The person's TOTP code: hidden input on a terminal, otherwise the next stdin line.

    The one way every command (plugins' too) gets a code. Never from argv or the
    environment: any process of the same uid, the agent included, can read those in
    /proc/PID/cmdline and /proc/PID/environ, and spend the code first.
    """
    import getpass

    from airlock.ptrace import refuse_ptrace

    refuse_ptrace()  # no process of this user reads the code out of this one's memory
    line = getpass.getpass(f"{prompt}: ") if sys.stdin.isatty() else sys.stdin.readline()
    code = line.strip().replace(" ", "")
    if not code:
        raise InvalidInput("no TOTP code given", field="totp", hint=CODE_ON_STDIN)
    if not code.isdigit() or not 6 <= len(code) <= 8:
        raise InvalidInput("a TOTP code is 6 digits", field="totp", hint=CODE_ON_STDIN)
    return code


def refuse_code_in_argv(args: list[str]) -> None:
    """``--totp`` is gone: a code on the command line can be read and spent by the agent."""
    for arg in args:
        if arg == "--":
            return
        if arg == "--totp" or arg.startswith("--totp="):
            raise InvalidInput(
                "--totp is no longer accepted: a code on the command line is visible to "
                "every process (/proc/PID/cmdline), which could spend it first",
                field="totp",
                hint=CODE_ON_STDIN,
            )


class WaitDisplay:
    """A spinner with a countdown on a terminal; one plain line otherwise."""

    def __init__(self) -> None:
        self._tty = sys.stderr.isatty()
        self._frame = 0
        self._announced = False

    async def __call__(self, status: WaitStatus) -> None:
        if not self._announced:
            sys.stderr.write(
                f"request {status.code} (fingerprint {status.fingerprint}) is waiting for "
                "approval: answer the prompt on your phone or run "
                f"`airlock approve {status.code}`\n"
            )
            self._announced = True
        if self._tty:
            left = max(0, round(status.total - status.elapsed))
            spin = SPINNER[self._frame % len(SPINNER)]
            self._frame += 1
            clock = f"{left // 60}:{left % 60:02d}"
            sys.stderr.write(f"\r{spin} waiting for approval of {status.code}: {clock} left ")
            sys.stderr.flush()

    def done(self) -> None:
        if self._tty and self._announced:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
