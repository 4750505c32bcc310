"""An audit record's fields: secrets scrubbed out, then written as JSON text (what
``_audit_format`` puts between a line's ``event`` and its ``prev``).

Values under keys that name secrets are replaced whatever they are; ``SecretStr`` values
anywhere; ``alk_`` tokens and ``Bearer``/``Basic`` credentials inside text are masked;
long strings and collections are cut down so one event cannot bloat the log.
"""

from __future__ import annotations

import enum
import functools
import math
import re
from collections.abc import Mapping
from datetime import date
from itertools import islice
from typing import Any

from airlock.common.json_text import compact_encoder

__all__ = [
    "MAX_DEPTH",
    "MAX_ITEMS",
    "MAX_STRING",
    "REDACTED",
    "RESERVED",
    "field_json",
    "fields_json",
    "scrub",
]

REDACTED = "[redacted]"
RESERVED = frozenset({"ts", "seq", "event", "prev", "mac"})
MAX_STRING = 4096
MAX_ITEMS = 1000
MAX_DEPTH = 12

# --- secrets out ----------------------------------------------------------------------

_SECRET_KEY = re.compile(
    r"password|passwd|passphrase|secret|authorization|api_?key|private_key|cookie|credential"
    r"|^totp|_token$|_claim$|_otp$"
    r"|^(code|otp|claim|token|pin|2fa|mfa|mfa_code|auth_code|verification_code"
    r"|x_airlock_claim|x_airlock_totp)$"
)
_TOKEN_IN_TEXT = re.compile(r"alk_[A-Za-z0-9_-]{8,}")
_AUTH_IN_TEXT = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")


SHORT_NAME = 64
"""Field names up to this long are remembered (they repeat); longer ones are an agent's."""


def _field_name(name: str) -> tuple[str, bool]:
    """The field name as logged (cut down, tokens masked, like any text) and whether its
    field holds a secret."""
    if len(name) <= SHORT_NAME:
        return _short_field_name(name)
    return _scrub_text(name), _secret_name(name)


@functools.lru_cache(maxsize=4096)
def _short_field_name(name: str) -> tuple[str, bool]:
    return _scrub_text(name), _secret_name(name)


def _secret_name(name: str) -> bool:
    return _SECRET_KEY.search(name.lower().replace("-", "_")) is not None


def _scrub_text(text: str) -> str:
    if len(text) <= SHORT_NAME:
        return _scrub_short_text(text)
    return _scrub_any_text(text)


@functools.lru_cache(maxsize=4096)
def _scrub_short_text(text: str) -> str:
    """Short texts repeat from record to record (ids, names, outcomes): scrubbed once."""
    return _scrub_any_text(text)


def _scrub_any_text(text: str) -> str:
    if len(text) > MAX_STRING:
        text = f"{text[:MAX_STRING]}…[+{len(text) - MAX_STRING} chars]"
    if "alk_" in text:
        text = _TOKEN_IN_TEXT.sub("alk_" + REDACTED, text)
    if _AUTH_IN_TEXT.search(text) is None:  # the common case, and cheaper than sub
        return text
    return _AUTH_IN_TEXT.sub(lambda m: f"{m.group(1)} {REDACTED}", text)


def scrub(value: Any, *, _depth: int = 0) -> Any:
    """*value* as JSON-ready data with secrets replaced by ``"[redacted]"``.

    Values under keys that name secrets are replaced whatever they are; ``SecretStr``
    values anywhere; ``alk_`` tokens and ``Bearer``/``Basic`` credentials inside text are
    masked. Long strings and collections are cut down so one event cannot bloat the log.
    """
    kind = type(value)
    if kind is str:
        return _scrub_text(value)
    if value is None or kind is int or kind is bool:
        return value
    if _depth > MAX_DEPTH:
        return "[too deep]"
    if kind is dict or isinstance(value, Mapping):
        out: dict[str, Any] = {}
        over = len(value) - MAX_ITEMS
        # The record's own fields, and most parameters: a loop without a count, each
        # text's length looked at here (these run for every field of every record).
        for key, item in value.items() if over <= 0 else islice(value.items(), MAX_ITEMS):
            if type(key) is str and len(key) <= SHORT_NAME:
                name, secret = _short_field_name(key)
            else:
                name, secret = _field_name(str(key))
            if secret:
                out[name] = REDACTED
            elif type(item) is str:
                short = len(item) <= SHORT_NAME
                out[name] = _scrub_short_text(item) if short else _scrub_any_text(item)
            elif type(item) is int or item is None:
                out[name] = item
            elif type(item) is float:
                out[name] = item if math.isfinite(item) else str(item)
            else:
                out[name] = scrub(item, _depth=_depth + 1)
        if over > 0:
            out["[truncated]"] = f"{over} more keys"
        return out
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)
        cleaned = [scrub(item, _depth=_depth + 1) for item in items[:MAX_ITEMS]]
        if len(items) > MAX_ITEMS:
            cleaned.append(f"[+{len(items) - MAX_ITEMS} more]")
        return cleaned
    return _scrub_other(value, _depth)


def _scrub_other(value: Any, depth: int) -> Any:
    """The rarer types (subclasses of the basic ones included)."""
    if isinstance(value, enum.Enum):
        return scrub(value.value, _depth=depth + 1)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return _scrub_text(str(value))
    # Imported here: reading and verifying the log (`airlock audit verify`) needs no pydantic.
    from pydantic import BaseModel, SecretBytes, SecretStr

    if isinstance(value, SecretStr | SecretBytes):
        return REDACTED
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, BaseModel):
        # SecretStr fields dump as "**********"; the key rules catch their names too.
        return scrub(value.model_dump(mode="json"), _depth=depth + 1)
    if isinstance(value, bytes | bytearray):
        return f"[{len(value)} bytes]"
    return _scrub_text(str(value))


# No cycle check: what it encodes is scrub()'s output, fresh containers cut at a depth.
_CANONICAL = compact_encoder(sort_keys=True, allow_nan=False)


@functools.lru_cache(maxsize=4096)
def _short_text_json(text: str) -> str:
    return _CANONICAL(_scrub_short_text(text))


def field_json(value: Any) -> str:
    """One field's value as :func:`fields_json` writes it (scrubbed, ASCII JSON), for a
    record whose field names are fixed in code: see ``gateway.operation_record``."""
    kind = type(value)
    if kind is str:
        if len(value) <= SHORT_NAME:
            return _short_text_json(value)
        return _CANONICAL(_scrub_any_text(value))
    if kind is int:
        return int.__repr__(value)
    if value is None:
        return "null"
    if kind is float:
        return float.__repr__(value) if math.isfinite(value) else _CANONICAL(str(value))
    return _CANONICAL(scrub(value, _depth=1))


def fields_json(fields: Mapping[str, Any]) -> str:
    """The scrubbed fields as ``,"k":v,...`` (keys sorted), ready to splice into a line."""
    for name in fields:
        if name in RESERVED:
            raise ValueError(f"audit field name {name!r} is reserved")
    if not fields:
        return ""
    return "," + _CANONICAL(scrub(fields))[1:-1]
