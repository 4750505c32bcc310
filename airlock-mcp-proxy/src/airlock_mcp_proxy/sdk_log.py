"""The MCP SDK's own log (the ``mcp`` logger), into the daemon log without the server's
words. The SDK logs what it could not use of a server's messages (a tool it drops,
named), often with a traceback quoting them: a server's token among it. (A stdout line
that is not an MCP message never reaches it: :mod:`airlock_mcp_proxy.stdio` drops it.)
Here each record becomes one event: its message with the secrets of the servers running
in this process masked, cut short, and of an exception only its type (its text may
quote the server, and cut a secret where masking cannot find it)."""

from __future__ import annotations

import logging
from typing import Any

from airlock.plugin import get_logger, withhold

log = get_logger("airlock_mcp_proxy")
MESSAGE_LIMIT = 300
_hidden: dict[int, list[str]] = {}
"""The secrets of each running server (by its Upstream's id)."""


def hide(owner: object, secrets: list[str]) -> None:
    """Mask *secrets* in what the SDK logs until :func:`forget` (*owner*'s server runs)."""
    _route_sdk_log()
    _hidden[id(owner)] = list(secrets)


def forget(owner: object) -> None:
    _hidden.pop(id(owner), None)


def masked_text(text: str) -> str:
    """*text* with every server's secrets withheld at once (the longest first, whichever
    server's it is)."""
    return str(withhold(text, [s for secrets in list(_hidden.values()) for s in secrets]))


class _Relay(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        args: Any = record.args
        if isinstance(args, tuple):
            args = tuple(masked_text(a) if isinstance(a, str) else a for a in args)
        try:
            text = str(record.msg) % args if args else str(record.msg)
        except (TypeError, ValueError):
            text = str(record.msg)
        error = record.exc_info[1] if record.exc_info else None
        log_at = log.error if record.levelno >= logging.ERROR else log.warning
        log_at(
            "mcp_client_log",
            message=masked_text(text)[:MESSAGE_LIMIT],
            error=type(error).__name__ if error is not None else None,
        )


def _route_sdk_log() -> None:
    sdk = logging.getLogger("mcp")
    if not any(isinstance(handler, _Relay) for handler in sdk.handlers):
        sdk.addHandler(_Relay(logging.WARNING))
        sdk.propagate = False
