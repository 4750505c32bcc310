"""Prices from OpenRouter's ``/models`` and the arithmetic of worst cases and charges.

OpenRouter gives prices as strings of dollars per token (``"0.0000025"``); they are read
as ``Decimal`` so sums stay exact. A prompt's tokens are reserved at their worst case,
its UTF-8 size (:data:`BYTES_PER_TOKEN`); the service's own count settles the call
afterwards.
"""

from __future__ import annotations

import fnmatch
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airlock_openrouter._models import ChatParams

BYTES_PER_TOKEN = 1
"""A token covers at least one byte: tokenisers average about 4 bytes a token on English
text and code, but spend up to a token a byte on characters outside their vocabulary,
which an agent may choose on purpose (an average would let each call cost more than its
reservation, and calls side by side overspend the budget by as much)."""
TOKENS_PER_MESSAGE = 4
"""Each embedding input's framing (a start and an end token)."""
CHAT_TOKENS_PER_MESSAGE = 8
"""Each chat message's framing in the model's chat template: its role and delimiters
(ChatML and Llama 3 spend 5, a tool message its call's id and name as well). Four, as
before, was below them: an agent sending many short messages got calls that cost more
than was reserved for them."""
CHAT_TOKENS = 32
"""A chat's own framing, whatever its messages: the start of the text and the header of
the answer's turn after the last message (5 in Llama 3), and the system block some
templates always add (Llama 3.1's "Cutting Knowledge Date", ~24 tokens in all)."""
TOOLS_TOKENS = 1000
"""What a model given tools or a response format also reads: the provider's own prompt
for them (Anthropic documents 346 tokens for Claude's, more for its built-in tools)."""


@dataclass(frozen=True)
class Price:
    """Dollars per prompt token, per answer token, and per request."""

    prompt: Decimal
    completion: Decimal
    request: Decimal = Decimal(0)
    cache_write: Decimal = Decimal(0)
    """A prompt token written to the provider's cache (``input_cache_write``)."""

    @classmethod
    def of(cls, pricing: Mapping[str, Any]) -> Price | None:
        """The price of a ``/models`` entry; None when it is missing or not a number (a
        prompt or answer price left out is unknown, not free)."""
        if any(pricing.get(k) is None for k in ("prompt", "completion")):
            return None
        try:
            values = [
                Decimal(str(pricing.get(k) or 0))
                for k in ("prompt", "completion", "request", "input_cache_write")
            ]
        except (InvalidOperation, ValueError):
            return None
        if any(not v.is_finite() or v < 0 for v in values):
            return None  # OpenRouter marks a router's variable price with "-1"
        return cls(*values)

    def cost(self, prompt_tokens: int, completion_tokens: int) -> Decimal:
        return self.prompt * prompt_tokens + self.completion * completion_tokens + self.request

    def worst(self, prompt_tokens: int, completion_tokens: int, *, cached: bool) -> Decimal:
        """:meth:`cost` at the dearest a prompt token can be billed: a prompt asking to be
        *cached* may be written to the cache, at ``input_cache_write`` or up to twice the
        prompt price (Anthropic: 1.25 times for five minutes, 2 for an hour)."""
        dearest = replace(self, prompt=max(self.prompt * 2, self.cache_write)) if cached else self
        return dearest.cost(prompt_tokens, completion_tokens)


def allowed(model: str, patterns: Iterable[str]) -> bool:
    """Whether *model* matches one of the glob *patterns* (case-sensitive, like the ids)."""
    return any(fnmatch.fnmatchcase(model, pattern) for pattern in patterns)


def estimate_tokens(text_size: int, messages: int = 0) -> int:
    return math.ceil(text_size / BYTES_PER_TOKEN) + TOKENS_PER_MESSAGE * messages


def prompt_size(value: Any) -> int:
    """UTF-8 bytes of the text in *value* (messages, content parts or embedding input); a
    lone surrogate, which JSON's ``\\ud800`` reads into and UTF-8 cannot hold, as the six
    bytes of that escape."""
    if isinstance(value, str):
        return len(value.encode("utf-8", "backslashreplace"))
    if isinstance(value, int):
        return BYTES_PER_TOKEN  # a token id is one token
    if isinstance(value, list):
        return sum(prompt_size(item) for item in value)
    if isinstance(value, dict):
        return len(json.dumps(value, ensure_ascii=False).encode("utf-8", "backslashreplace"))
    return 0


def chat_prompt_tokens(params: ChatParams) -> int:
    """The most tokens a chat's prompt can be billed for, from its text alone."""
    tokens = math.ceil(chat_size(params) / BYTES_PER_TOKEN) + CHAT_TOKENS
    tokens += CHAT_TOKENS_PER_MESSAGE * len(params.messages)
    return tokens + (TOOLS_TOKENS if params.tools or params.response_format else 0)


def asks_for_caching(params: ChatParams) -> bool:
    """Whether a message part or a tool carries ``cache_control`` (passed upstream)."""
    values: list[Any] = [params.tools or [], *(m.content for m in params.messages)]
    while values:
        value = values.pop()
        if isinstance(value, dict):
            if "cache_control" in value:
                return True
            values.extend(value.values())
        elif isinstance(value, list):
            values.extend(value)
    return False


def chat_size(params: ChatParams) -> int:
    """Bytes of what the model reads: message texts, tool calls and the id a tool's answer
    refers to, the fields a message carries beyond OpenAI's (passed upstream:
    ``reasoning_details`` and the like) and tool definitions; those a template writes as
    JSON at the size it writes them (:func:`rendered_size`)."""
    parts: list[Any] = []
    size = rendered_size(params.tools or []) + rendered_size(params.response_format or "")
    for message in params.messages:
        parts += [message.content or "", message.name or "", message.tool_call_id or ""]
        calls = message.tool_calls or []
        size += max(rendered_size(calls), rendered_size(_arguments_read(calls)))
        if message.model_extra:
            parts.append(message.model_extra)
    return size + prompt_size(parts)


_HTML_ESCAPED = "<>&'"
"""What Jinja's ``tojson`` spells as a six-character ``\\u`` escape."""


def rendered_size(value: Any) -> int:
    """Bytes of *value* as a chat template writes it with ``tojson``: Jinja's filter writes
    ASCII JSON with ``<``, ``>``, ``&`` and ``'`` as ``\\u003c`` and the like (six bytes for
    one), and numbers as Python does (``1e15`` as ``1000000000000000.0``), so text an agent
    picks grows up to sixfold on the way to the model; a token a byte bounds it. Never
    less than :func:`prompt_size` of it (ASCII JSON spells no character in fewer bytes
    than UTF-8)."""
    if value == "" or value == []:
        return 0
    text = json.dumps(value, default=str)
    return len(text) + 5 * sum(map(text.count, _HTML_ESCAPED))


def _arguments_read(calls: list[Any]) -> list[Any]:
    """*calls* with each call's ``arguments`` as read JSON where they are JSON: serving
    engines read them before the template writes them again."""
    read: list[Any] = []
    for call in calls:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict) and isinstance(function.get("arguments"), str):
            try:
                arguments = json.loads(function["arguments"])
            except (ValueError, RecursionError):
                pass
            else:
                call = {**call, "function": {**function, "arguments": arguments}}
        read.append(call)
    return read


def has_media(params: ChatParams) -> bool:
    """Whether a message has a part other than text (an image, audio, a file), or refers
    to audio the model produced before (``audio``): a few bytes of URL or reference that
    the model may read as thousands of tokens."""
    return any(
        not isinstance(part, dict) or part.get("type") != "text"
        for message in params.messages
        if isinstance(message.content, list)
        for part in message.content
    ) or any("audio" in (message.model_extra or {}) for message in params.messages)
