"""Secrets a service sends back, withheld from what a connector passes on.

A service, or a proxy on the way, may quote a request back: an ``Authorization``
header, a token in a command line, a password in a refused login. A connector hands its
answers to the agent, so each secret it sent is withheld from every string of what it
read, names of members too (a JSON escape such as ``\\u0073`` or ``\\/`` spells the
secret only once the JSON is read, so read JSON is searched, not its bytes alone).

This stops an echo, not a service set on leaking a secret it was given: that one can
always pass it on in a form no filter knows.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["withhold"]


def withhold(
    value: Any, secrets: Iterable[str], *, mark: str = "[secret]", least: int | None = None
) -> Any:
    """*value* (text, or JSON as ``json.loads`` or ``model_dump`` makes it) with each of
    *secrets* replaced by *mark* wherever it occurs, and with *least*, any run of at least
    that many of a secret's characters too (an echo cut short, which the agent could move
    by padding its own input); a copy where anything is a container, made without
    recursion (JSON may nest as deep as its reader allowed)."""
    # The longest first: one secret inside another must not leave the other's rest.
    hidden = sorted({secret for secret in secrets if secret}, key=len, reverse=True)
    if not hidden:
        return value

    def text(found: str) -> str:
        for secret in hidden:
            if secret in found:
                found = found.replace(secret, mark)
            if least is not None and len(secret) > least:
                found = _without_runs(found, secret, least, mark)
        return found

    pending: list[tuple[Any, Any]] = []

    def copy(item: Any) -> Any:
        if isinstance(item, str):
            return text(item)
        if isinstance(item, dict):
            members: dict[Any, Any] = {}
            pending.append((item, members))
            return members
        if isinstance(item, list | tuple):
            items: list[Any] = []
            pending.append((item, items))
            return items
        return item

    result = copy(value)
    while pending:
        source, target = pending.pop()
        if isinstance(target, dict):
            for name, item in source.items():
                target[text(name) if isinstance(name, str) else name] = copy(item)
        else:
            target.extend(copy(item) for item in source)
    return result


def _without_runs(text: str, secret: str, least: int, mark: str) -> str:
    """*text* with each run of at least *least* characters of *secret* replaced by *mark*.

    Every such run holds one of the secret's pieces of ``(least + 1) // 2`` characters
    taken end to end, so only those are searched for; each one found is grown along the
    secret as far as the text follows it."""
    size = (least + 1) // 2
    spans: list[tuple[int, int]] = []
    for start in range(0, len(secret) - size + 1, size):
        piece = secret[start : start + size]
        at = text.find(piece)
        while at >= 0:
            left, right, first, last = at, at + size, start, start + size
            while left > 0 and first > 0 and text[left - 1] == secret[first - 1]:
                left, first = left - 1, first - 1
            while right < len(text) and last < len(secret) and text[right] == secret[last]:
                right, last = right + 1, last + 1
            if right - left >= least:
                spans.append((left, right))
            at = text.find(piece, at + 1)
    if not spans:
        return text
    out, end = [], 0
    for left, right in sorted(spans):
        if left >= end:
            out += [text[end:left], mark]
        end = max(end, right)
    return "".join(out) + text[end:]
