from __future__ import annotations

import re
import threading
import types
import typing
from collections import deque
from datetime import date, datetime, timedelta
from datetime import time as dt_time
from decimal import Decimal
from functools import cache
from typing import Any
from uuid import UUID

import annotated_types
from pydantic import BaseModel

from airlock.framework.operations import operation_hash
from airlock.framework.policies import (
    Decision,
    PolicyContext,
    Stage,
    Untrusted,
    Verdict,
)
from airlock.models import Access

_IN_SCOPE = Verdict(Decision.ALLOW, "in scope", "scope")
"""Most calls' verdict, made once (a frozen dataclass is slow to make, and safe to share)."""


class ScopePolicy:
    """An operation's service must be in the session, and its access within the session's.

    A session made from a write approval covers exactly the approved call and nothing
    else, reads of the same service included: its access level is not consulted.
    """

    name = "scope"

    def check(self, ctx: PolicyContext) -> Verdict | None:
        if ctx.stage != Stage.OPERATION:
            return None
        if ctx.session is None:
            return Verdict(Decision.DENY, "no session")
        approved = ctx.session.operation_hash
        if approved is not None:
            asked = operation_hash(ctx.service, ctx.operation or "", ctx.params)
            if asked != approved:
                return Verdict(
                    Decision.DENY,
                    "this session runs only the call that was approved",
                    code="approval_required",
                )
            return Verdict(Decision.ALLOW, "the approved call")
        if ctx.service not in ctx.session.services:
            return Verdict(Decision.DENY, f"session does not cover service {ctx.service!r}")
        if not ctx.session.access.allows(ctx.access):
            return Verdict(Decision.DENY, f"session is {ctx.session.access}-only")
        return _IN_SCOPE


class ReadOnlyPolicy:
    """Writes need their own approval of the exact action, unless configured ``deny``."""

    name = "read-only"

    def check(self, ctx: PolicyContext) -> Verdict | None:
        if ctx.access is not Access.WRITE:
            return None
        if ctx.permissions.write == "deny":
            return Verdict(Decision.DENY, f"writes to {ctx.service!r} are disabled in config")
        if ctx.stage == Stage.OPERATION:
            return Verdict(Decision.ASK, "write operations need their own approval")
        return None


class RateLimitPolicy:
    """At most ``permissions.rate_limit`` operations a minute per session (sliding window)."""

    name = "rate-limit"
    window = 60.0

    def __init__(self) -> None:
        self._calls: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, ctx: PolicyContext) -> Verdict | None:
        if ctx.stage != Stage.OPERATION or ctx.session is None:
            return None
        limit = ctx.rate_limit
        with self._lock:
            calls = self._calls.setdefault(ctx.session.id, deque())
            while calls and calls[0] <= ctx.now - self.window:
                calls.popleft()
            if len(calls) >= limit:
                return Verdict(
                    Decision.DENY, f"more than {limit} operations a minute", code="rate_limited"
                )
            calls.append(ctx.now)
        return None


# A one-time code: 4-8 digits (optionally split by a space or dash) near a word that says so.
_CODE_WORDS = (
    r"code|otp|passcode|pin|verification|verify|security|one[- ]time|2fa|two[- ]factor|"
    r"login|sign[- ]in|token|código|codice|bestätigungscode|einmal"
)
_CODE_NEAR_WORD = re.compile(
    rf"(?P<word>\b(?:{_CODE_WORDS})\b[^\n\d]{{0,40}}?)(?P<code>\b\d{{3,4}}[- ]?\d{{2,4}}\b)",
    re.IGNORECASE,
)
_CODE_BEFORE_WORD = re.compile(
    rf"(?P<code>\b(?:\d{{3,4}}[- ]\d{{3,4}}|\d{{4,8}})\b)"
    rf"(?P<word>[^\n\d]{{0,25}}?\b(?:is your|{_CODE_WORDS})\b)",
    re.IGNORECASE,
)
_RESET_LINK = re.compile(
    r"https?://[^\s<>\"')\]]*(?:reset|password|passwd|recover|verify|verification|confirm|"
    r"magic|token|otp|login|signin|sign-in|auth)[^\s<>\"')\]]*",
    re.IGNORECASE,
)
# A secret after its label: "Passcode: aB3xYz", "PIN: 123 456 789#", "?pwd=Xy12",
# "the password is hunter2" (meeting invitations carry these).
_LABELLED_SECRET = re.compile(
    r"(?P<label>\b(?:password|passwort|passcode|pass code|pwd|pin|access code|meeting code|"
    r"kennwort|mot de passe|contraseña)\b\s*(?:[:=]|\bis\b)\s*)"
    r"(?P<secret>\d[\d \-]{2,24}\d#?|[^\s,;<>\"')\]]{3,64})",
    re.IGNORECASE,
)
REDACTED_CODE = "[code redacted]"
REDACTED_LINK = "[link redacted]"
_TEXT_FIELDS = frozenset({"text", "snippet", "subject", "body", "html", "content", "preview"})


def redact_text(text: str) -> str:
    """Mask one-time codes and password-reset/sign-in links in *text*."""
    text = _RESET_LINK.sub(REDACTED_LINK, text)
    text = _LABELLED_SECRET.sub(lambda m: m.group("label") + REDACTED_CODE, text)
    text = _CODE_NEAR_WORD.sub(lambda m: m.group("word") + REDACTED_CODE, text)
    return _CODE_BEFORE_WORD.sub(lambda m: REDACTED_CODE + m.group("word"), text)


@cache
def text_fields(model: type[BaseModel]) -> frozenset[str]:
    """The keys whose strings are redacted in *model*'s results: mail's usual names, and
    every field (at any depth) a connector marked ``UntrustedText``."""
    found = set(_TEXT_FIELDS)
    seen: set[type[BaseModel]] = set()

    def visit(cls: type[BaseModel]) -> None:
        if cls in seen:
            return
        seen.add(cls)
        for name, info in cls.model_fields.items():
            if any(isinstance(meta, Untrusted) for meta in info.metadata):
                found.add(info.alias or name)
            for inner in _models_in(info.annotation):
                visit(inner)

    visit(model)
    return frozenset(found)


_SCALARS = frozenset(
    {bool, int, float, str, bytes, type(None), datetime, date, dt_time, timedelta, Decimal, UUID}
)


@cache
def never_redacted(model: type[BaseModel]) -> bool:
    """Whether no dump of *model* can hold a key of :func:`text_fields` (the filter then
    has nothing to mask, and its dump is skipped): true only when it and every model it
    holds, at any depth, declare all their keys (no extra fields, computed fields or
    serializers of their own), none named like a text field, with values that are
    scalars, lists, tuples, sets, unions or literals of them, or such models."""
    fields = text_fields(model)
    seen: set[type[BaseModel]] = set()

    def closed(cls: type[BaseModel]) -> bool:
        if cls in seen:
            return True
        seen.add(cls)
        decorators = cls.__pydantic_decorators__
        if (
            cls.model_config.get("extra") == "allow"
            or cls.model_computed_fields
            or decorators.model_serializers
            or decorators.field_serializers
        ):
            return False
        for name, info in cls.model_fields.items():
            if {name, info.alias, info.serialization_alias} & fields:
                return False
            if not all(_constraint(meta) for meta in info.metadata):
                return False
            if not plain(info.annotation):
                return False
        return True

    def plain(annotation: Any) -> bool:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return closed(annotation)
        if isinstance(annotation, type) and annotation in _SCALARS:
            return True
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
        if origin is typing.Literal:
            return all(isinstance(arg, bool | int | str | type(None)) for arg in args)
        if origin is typing.Annotated:
            return all(_constraint(meta) for meta in args[1:]) and plain(args[0])
        if origin in (list, tuple, set, frozenset, typing.Union, types.UnionType):
            return all(arg is Ellipsis or plain(arg) for arg in args)
        return False  # Any, dicts, enums, dataclasses, ...: keys or values of any shape

    return closed(model)


def _constraint(meta: Any) -> bool:
    """Metadata that only constrains a value (``Field(ge=0)``, ``max_length``...), never
    how it is dumped: anything else (a serializer, a marker) counts as unknown."""
    return isinstance(meta, annotated_types.BaseMetadata) or (
        type(meta).__name__ == "_PydanticGeneralMetadata"
    )


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _redact(value: Any, key: str | None, fields: frozenset[str], within: bool = False) -> Any:
    """*value* with text fields redacted; every string inside a text field holding JSON
    (an MCP tool's structured content marked untrusted) counts as text too."""
    untrusted = within or key in fields
    if isinstance(value, str):
        return redact_text(value) if untrusted else value
    if isinstance(value, dict):
        return {k: _redact(v, k, fields, untrusted) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v, key, fields, within) for v in value]
    return value


class RedactCodesPolicy:
    """Text from outside handed to agents has one-time codes, meeting passwords and PINs,
    and reset links masked: mail, and any result field marked ``UntrustedText``.

    An agent that can read mail could otherwise take over accounts by requesting a
    password reset and reading the code. A session approved with ``sensitive: true``
    sees the text unmasked.
    """

    name = "redact-codes"

    def check(self, ctx: PolicyContext) -> Verdict | None:
        return None

    def filter_result(self, ctx: PolicyContext, result: BaseModel) -> BaseModel:
        if ctx.session is not None and ctx.session.sensitive:
            return result
        if never_redacted(type(result)):
            return result
        dumped = result.model_dump(mode="python", by_alias=True)
        redacted = _redact(dumped, None, text_fields(type(result)))
        if redacted == dumped:
            return result
        return type(result).model_validate(redacted)
