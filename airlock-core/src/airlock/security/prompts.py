"""The approval prompt: one rendering, the same on every channel.

Everything the agent controls (reason, agent name, process name, parameters) is
flattened to one line by :func:`untrusted_line`, and shown quoted under a fixed heading
that says the agent claims it, so it cannot imitate or hide the prompt's own lines. A
write's parameters (and what it acts on) with letters passing for others
(``bob@cоmpany.com``, a Cyrillic ``о``) get a line naming them (``security/lookalikes``).
The CLI's listings and every notifier show agent text through the same function.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from airlock.common.text import untrusted_line as untrusted_line
from airlock.framework.notifiers import Prompt
from airlock.framework.spending import format_usd
from airlock.security.lookalikes import LOOKALIKE_LABEL, lookalikes
from airlock.settings.durations import format_duration
from airlock.state.store import AccessRequest

REASON_LIMIT = 300
PARAM_LIMIT = 400
NAME_LIMIT = 40
MIN_VALUE = 12
CLAIM_LABEL = "Agent says it is"
SENSITIVE_WARNING = "yes: one-time codes and reset links NOT masked"
TARGET_LABEL = "Acts on (the service's text, untrusted)"
TARGET_LIMIT = 200


def render_prompt(
    request: AccessRequest, *, process: str | None, target: str | None = None
) -> Prompt:
    """The prompt for *request*; *target*: what a write acts on, as its service described
    it (``security/targets.py``), shown on its own line labelled as the service's text."""
    lines: list[tuple[str, str]] = [("Who", f"uid {request.requester_uid}")]
    claimed = []
    if process:  # /proc/PID/comm: the agent picks its own process name
        claimed.append(f"process {untrusted_line(process, 32)!r}")
    if request.agent:
        claimed.append(f"agent {untrusted_line(request.agent, 64)!r}")
    if claimed:
        lines.append((CLAIM_LABEL, ", ".join(claimed) + " (unverified)"))
    lines += [
        ("Services", ", ".join(request.services)),
        ("Access", _access_line(request)),
        ("Lasts", format_duration(request.ttl)),
    ]
    if request.operation:
        params = request.operation.get("params", {})
        lines.append(("Operation", f"{request.operation['service']}.{request.operation['name']}"))
        lines.append(("Parameters", _params_line(params)))
        if target is not None:
            lines.append((TARGET_LABEL, untrusted_line(target, TARGET_LIMIT)))
        spoofed = spoofed_words(params, target)
        if spoofed is not None:
            lines.append((LOOKALIKE_LABEL, spoofed))
    if request.sensitive:
        lines.append(("Sensitive", SENSITIVE_WARNING))
    lines += [("Request", request.code), ("Fingerprint", request.fingerprint)]
    title = (
        f"Airlock: approve write {request.code}?"
        if request.operation
        else f"Airlock: access request {request.code}"
    )
    return Prompt(
        request_id=request.id,
        code=request.code,
        title=title,
        lines=lines,
        reason=untrusted_line(request.reason, REASON_LIMIT),
        expires_at=datetime.fromtimestamp(request.expires_at, UTC),
    )


def spoofed_words(params: dict[str, Any], target: str | None) -> str | None:
    """The words of a write's *params* and *target* whose letters pass for others
    (``security/lookalikes``), over their whole text, not the lines shown: nothing hides
    past a cut."""
    return lookalikes(f"{_json(params)}\n{target or ''}")


def _access_line(request: AccessRequest) -> str:
    """``read``, ``write``, or for money the amount itself: the person approves a sum."""
    if request.budget_nano is None:
        return request.access
    where = ", ".join(request.services)
    return (
        f"spend up to {format_usd(request.budget_nano)} on {where} "
        f"for {format_duration(request.ttl)}"
    )


def _params_line(params: dict[str, Any]) -> str:
    text = _json(params)
    line = untrusted_line(text, PARAM_LIMIT)
    if line != text:
        # Too long or altered to show faithfully: every parameter still shows, its value
        # cut to its share, and a digest of the exact parameters is added.
        digest = f" (sha256 {hashlib.sha256(text.encode()).hexdigest()[:16]})"
        line = _each_cut(params, PARAM_LIMIT - len(digest)) + digest
    return line


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(", ", ": "))


def _each_cut(params: dict[str, Any], limit: int) -> str:
    """The parameters in *limit* characters, however long one of them: a long value
    must not push the ones sorted after it (where a message goes) out of the line. Short
    values are kept whole; the long ones share what is left."""
    keys = sorted(params)
    names = [untrusted_line(_json(str(key)), NAME_LIMIT) for key in keys]
    values = [untrusted_line(_json(params[key]), limit) for key in keys]
    room = limit - 2 - sum(len(name) + 4 for name in names)
    limits: dict[int, int] = {}
    for done, i in enumerate(sorted(range(len(keys)), key=lambda i: len(values[i]))):
        share = max(MIN_VALUE, room // (len(keys) - done))
        limits[i] = min(len(values[i]), share)
        room -= limits[i]
    parts = [f"{name}: {untrusted_line(values[i], limits[i])}" for i, name in enumerate(names)]
    return untrusted_line("{" + ", ".join(parts) + "}", limit)
