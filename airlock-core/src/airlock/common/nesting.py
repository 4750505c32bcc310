"""How deeply a JSON value nests, checked without recursion: a hostile value (an agent's
body, a line planted in the audit log) must not overflow the stack of the check itself."""

from __future__ import annotations

from typing import Any


def nested_deeper_than(value: Any, limit: int) -> bool:
    """Whether *value* has objects or arrays more than *limit* levels deep (a top-level
    one is level 1); stops at the first one past it."""
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            if level > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return False
