"""Logging with structlog: readable on a terminal, JSON Lines otherwise; secrets masked.

Log calls pass facts as keywords (``log.info("session_issued", session=...)``). The
``mask_secrets`` processor replaces values under secret-sounding keys and any session
token pattern, so a careless call site still cannot leak a secret. Tracebacks are printed
plainly, never with the local variables of each frame (which may hold a code, a token or
a credential).

Modules take their logger from :func:`get_logger`: structlog is imported on the first log
call, not at import (it costs ~100 ms, and a CLI command that logs nothing need not pay).
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from structlog.typing import FilteringBoundLogger

SECRET_KEYS = re.compile(
    r"(password|passphrase|secret|token|totp|claim|authorization|api_key|apikey|bot_token|key)$",
    re.IGNORECASE,
)
TOKEN_PATTERN = re.compile(r"(?:alk|clm|ald)_[A-Za-z0-9_-]{20,}")  # session, claim, login
MASK = "[redacted]"


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        return TOKEN_PATTERN.sub(MASK, value)
    if isinstance(value, dict):
        return {k: MASK if SECRET_KEYS.search(str(k)) else _mask(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask(v) for v in value]
    if type(value).__name__ == "SecretStr":
        return MASK
    return value


def mask_secrets(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        event[key] = MASK if SECRET_KEYS.search(key) else _mask(event[key])
    return event


class _LazyLogger:
    __slots__ = ("_logger", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._logger: Any = None

    def __getattr__(self, attr: str) -> Any:
        if self._logger is None:
            import structlog

            self._logger = structlog.get_logger(self._name)
        return getattr(self._logger, attr)


def get_logger(name: str) -> FilteringBoundLogger:
    """The logger called *name*; structlog is imported when it first logs."""
    lazy: Any = _LazyLogger(name)
    return lazy  # type: ignore[no-any-return]


class _LibraryRecords(logging.Handler):
    """What libraries log through the standard library (aiohttp, asyncio), as structlog
    events: the message's first line, masked; an exception by its type and the frames it
    came through, never its text. aiohttp's own errors quote the bytes of the request
    they could not parse (a header line with a session token, a claim or a TOTP code),
    and asyncio's next lines carry the failed task's repr, its exception's text in it."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields: dict[str, Any] = {"library": record.name}
            exc_type, _exc, tb = record.exc_info or (None, None, None)
            if exc_type is not None:
                fields["error"] = exc_type.__name__
                if tb is not None:
                    fields["frames"] = [
                        f"{frame.filename}:{frame.lineno} {frame.name}"
                        for frame in traceback.extract_tb(tb)
                    ]
            level = record.levelname.lower()
            emit = getattr(get_logger(record.name), level if level in _LEVELS else "error")
            first_line = record.getMessage().split("\n", 1)[0][:300]
            emit(_mask(first_line), **fields)
        except Exception:
            self.handleError(record)


_LEVELS = frozenset(("debug", "info", "warning", "error", "critical"))


def configure_logging(*, json: bool | None = None, level: int = logging.INFO) -> None:
    """JSON when *json* is true or stderr is not a terminal; a readable console otherwise.
    Libraries' records (the standard library's logging) go the same way, masked."""
    import structlog

    root = logging.getLogger()  # warnings and worse, as by default
    root.handlers = [h for h in root.handlers if not isinstance(h, _LibraryRecords)]
    root.addHandler(_LibraryRecords())

    as_json = (not sys.stderr.isatty()) if json is None else json
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            mask_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
