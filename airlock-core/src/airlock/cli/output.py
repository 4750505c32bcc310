"""Printing for people and for scripts: JSON on ``--json``, errors to stderr with a hint.

Text for people goes through :func:`airlock.common.text.untrusted_line` (the prompt's own
sanitiser): much of it (reasons, agent names, audit details, daemon messages) comes from
the agent, and must not reach the terminal as escape sequences or forged lines. JSON is
escaped by the encoder (``ensure_ascii``, or :func:`readable_json`) and stays exact.
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


_UNSHOWN = ("Cc", "Cf", "Zl", "Zp", "Co", "Cs", "Cn")
"""What :func:`airlock.common.text.untrusted_line` blanks out: C1 codes, bidi overrides,
line separators... JSON may carry them raw; a terminal would act on them."""


def readable_json(data: Any, *, indent: int | None = 2, sort_keys: bool = False) -> str:
    """*data* as JSON a person reads in a terminal: letters as they are (an accent is not
    escaped), every character a terminal could act on escaped, so it decodes the same."""
    import unicodedata

    text = json.dumps(data, indent=indent, ensure_ascii=False, sort_keys=sort_keys)
    return "".join(
        json.dumps(c)[1:-1] if c >= "\x7f" and unicodedata.category(c) in _UNSHOWN else c
        for c in text
    )


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
