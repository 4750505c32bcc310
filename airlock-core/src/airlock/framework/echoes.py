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


def withhold(value: Any, secrets: Iterable[str], *, mark: str = "[secret]") -> Any:
    """*value* (text, or JSON as ``json.loads`` or ``model_dump`` makes it) with each of
    *secrets* replaced by *mark* wherever it occurs; a copy where anything is a container,
    made without recursion (JSON may nest as deep as its reader allowed)."""
    # The longest first: one secret inside another must not leave the other's rest.
    hidden = sorted({secret for secret in secrets if secret}, key=len, reverse=True)
    if not hidden:
        return value

    def text(found: str) -> str:
        for secret in hidden:
            if secret in found:
                found = found.replace(secret, mark)
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
