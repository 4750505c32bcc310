"""What a write acts on, looked up for the person's prompt (``Connector.describe``).

An id in a write's parameters (``move`` of message ``1234``) tells the person nothing;
the connector host asks the service what it names ("'Invoice 42' from bob@example.com
in INBOX") when the write is requested, and the prompt shows that on its own line. The
text is the service's (a stranger wrote that subject) and was read without the agent
holding any read session, so it goes to the person only: the prompt on every channel,
the dashboard, and ``GET /v1/requests`` for a caller other than the requester (the
daemon's owner or root looking at another uid's request). Never into an answer the agent
can get, the audit log (it records that a description was shown, and its length) or a
log line. It is not stored either: it lives in the daemon's memory while it runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from airlock.common.logs import get_logger
from airlock.common.text import untrusted_line
from airlock.framework.connectors import OperationSpec
from airlock.gateway.services import Service
from airlock.security.audit import Auditor
from airlock.security.prompts import TARGET_LABEL, TARGET_LIMIT
from airlock.state.store import AccessRequest

__all__ = [
    "LOOKING",
    "TARGET_LABEL",
    "TARGET_LIMIT",
    "UNKNOWN",
    "Describe",
    "TargetNotes",
    "look_up",
]

log = get_logger("airlock.approvals")

LOOKING = "looking it up…"
UNKNOWN = "could not look it up: check the parameters before you approve"
KEEP = 256
"""Notes kept at most (pending requests are far fewer: 30 at once)."""

Describe = Callable[[Service, OperationSpec, Mapping[str, Any]], Awaitable[str | None]]
"""How the core asks the connector host what a write's params act on."""


class TargetNotes:
    """Each write request's "Acts on" line by request id, while the daemon runs: kept
    across config reloads, never written to disk (subjects are personal data)."""

    def __init__(self) -> None:
        self._lines: dict[str, str] = {}

    def get(self, request_id: str) -> str | None:
        return self._lines.get(request_id)

    def put(self, request_id: str, line: str | None) -> None:
        self._lines.pop(request_id, None)
        if line is None:
            return
        self._lines[request_id] = line
        while len(self._lines) > KEEP:
            del self._lines[next(iter(self._lines))]


async def look_up(
    describe: Describe,
    service: Service,
    spec: OperationSpec,
    request: AccessRequest,
    audit: Auditor,
) -> str | None:
    """The prompt's line for *request*'s target: the service's description flattened and
    cut by the one sanitiser, a note that it could not be looked up (a failure or
    timeout: the request stands), or None (the connector describes nothing here)."""
    assert request.operation is not None
    try:
        text = await describe(service, spec, request.operation["params"])
    except Exception as exc:  # never a failed request; the message may quote the service
        log.info("write_target_unknown", request=request.id, error=type(exc).__name__)
        text, line = None, UNKNOWN
    else:
        if text is None:
            return None
        line = untrusted_line(text, TARGET_LIMIT)
    try:
        await audit.append(
            "write_target_described",
            request=request.id,
            request_code=request.code,
            shown=text is not None,
            chars=len(line) if text is not None else 0,
        )
    except Exception as exc:  # shown only once its record is on disk
        log.warning("write_target_unrecorded", request=request.id, error=type(exc).__name__)
        return UNKNOWN
    return line
