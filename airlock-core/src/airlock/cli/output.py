"""Printing for people and for scripts: JSON on ``--json``, errors to stderr with a hint.

Text for people goes through :func:`airlock.common.text.untrusted_line` (the prompt's own
sanitiser): much of it (reasons, agent names, audit details, daemon messages) comes from
the agent, and must not reach the terminal as escape sequences or forged lines. JSON is
escaped by the encoder (``ensure_ascii``) and stays exact.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from airlock.errors import AirlockError

T = TypeVar("T")
CELL_LIMIT = 80
MESSAGE_LIMIT = 500


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def report_error(exc: AirlockError) -> None:
    from airlock.common.text import untrusted_line

    sys.stderr.write(f"error: {untrusted_line(exc.message, MESSAGE_LIMIT)}\n")
    if exc.hint:
        sys.stderr.write(f"hint: {untrusted_line(exc.hint, MESSAGE_LIMIT)}\n")


def table(rows: list[list[str]], headers: list[str]) -> str:
    """A plain aligned table (no colours, so it pastes cleanly); each cell one safe line."""
    from airlock.common.text import untrusted_line

    rows = [[untrusted_line(cell, CELL_LIMIT) for cell in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def print_listing(
    items: Sequence[T],
    *,
    as_json: bool,
    dump: Callable[[T], Any],
    empty: str,
    headers: list[str],
    row: Callable[[T], list[str]],
) -> None:
    """A listing command's output: JSON for scripts, a table or a plain "none" for people."""
    if as_json:
        print_json([dump(item) for item in items])
    elif not items:
        sys.stdout.write(empty + "\n")
    else:
        sys.stdout.write(table([row(item) for item in items], headers) + "\n")
