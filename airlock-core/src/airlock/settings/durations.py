"""Durations as people write them in config and on the command line: ``90s``, ``8h``, ``7d``."""

from __future__ import annotations

import math
import re

from airlock.errors import InvalidInput

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# ASCII digits only: str.isdigit() and \d also take "²" or "①", which int() cannot read.
_PATTERN = re.compile(r"^\s*([0-9]{1,7})\s*([smhd])\s*$")
_SECONDS = re.compile(r"^\s*([0-9]{1,64})\s*$")  # int() reads at most 4,300 digits
MAX_SECONDS = 9_999_999 * 86400
"""The longest duration written with a unit (``9999999d``); a bare number of seconds may
not exceed it either (a longer one only overflowed where a time was added to it)."""


def parse_duration(text: str | int | float, *, field: str = "duration") -> int:
    """Seconds in *text* (``"90s"``, ``"60m"``, ``"8h"``, ``"7d"``; a bare number is seconds)."""
    if isinstance(text, bool):
        raise InvalidInput(f"{field}: expected a duration like 90s, 60m or 8h", field=field)
    if isinstance(text, float) and not math.isfinite(text):
        raise InvalidInput(
            f"{field}: {text!r} is not a duration; write it like 90s, 60m or 8h", field=field
        )
    if isinstance(text, int | float):
        seconds = int(text)
    elif match := _PATTERN.match(text):
        seconds = int(match.group(1)) * _UNITS[match.group(2)]
    elif match := _SECONDS.match(text):
        seconds = int(match.group(1))
    else:
        raise InvalidInput(
            f"{field}: {text[:20]!r} is not a duration; write it like 90s, 60m or 8h",
            field=field,
        )
    if seconds <= 0:
        raise InvalidInput(f"{field}: must be longer than zero", field=field)
    if seconds > MAX_SECONDS:
        raise InvalidInput(f"{field}: at most 9999999d", field=field)
    return seconds


def format_duration(seconds: float) -> str:
    seconds = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
