"""Printing for people and for scripts: JSON on ``--json``, errors to stderr with a hint."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from airlock.errors import AirlockError

T = TypeVar("T")


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def report_error(exc: AirlockError) -> None:
    sys.stderr.write(f"error: {exc.message}\n")
    if exc.hint:
        sys.stderr.write(f"hint: {exc.hint}\n")


def table(rows: list[list[str]], headers: list[str]) -> str:
    """A plain aligned table (no colours, so it pastes cleanly)."""
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
