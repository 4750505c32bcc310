"""Why the daemon's socket did not answer, in words, with nothing heavy imported: the CLI
says "no daemon" this way without loading the client (pydantic models, asyncio)."""

from __future__ import annotations

import os
from pathlib import Path

from airlock import errors

START_HINT = "start it with `airlock serve`"


def no_socket(socket: Path) -> errors.DaemonUnreachable | None:
    """The error for a socket that does not exist (no daemon), or None if it does."""
    if os.path.exists(socket):
        return None
    return _unreachable(socket, FileNotFoundError(2, "No such file or directory"))


def _unreachable(socket: Path, exc: Exception) -> errors.DaemonUnreachable:
    """Say why the socket did not answer, and what to do about it."""
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, OSError):
        cause = cause.__cause__ or cause.__context__
    if isinstance(cause, PermissionError):
        return errors.DaemonUnreachable(
            f"not allowed to connect to the Airlock socket {socket}",
            hint="in isolated mode, add your user to the socket's group (see `airlock status`)",
        )
    reason = cause.strerror.lower() if isinstance(cause, OSError) and cause.strerror else str(exc)
    return errors.DaemonUnreachable(
        f"no Airlock daemon answers at {socket} ({reason})", hint=START_HINT
    )
