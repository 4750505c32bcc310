"""Prompts as Signal text. Signal shows text as sent (``text_mode: normal``: no markup to
escape), so the one rule is core's: the agent's text stays one short line under its fixed
"untrusted" heading, flattened again here whatever core sent. Values are kept short so
the whole prompt stays one readable message."""

from __future__ import annotations

from airlock.plugin import Notice, Prompt, flatten_prompt, untrusted_line

__all__ = ["notice_text", "prompt_text"]

VALUE_LIMIT = 160
HOW_TO_ANSWER = (
    "Quote-reply to this message (swipe it right) with your 6-digit code to approve, "
    "or react 👎 to deny."
)


def prompt_text(prompt: Prompt) -> str:
    safe = flatten_prompt(prompt, value_limit=VALUE_LIMIT)
    return f"{safe.as_text()}\n{HOW_TO_ANSWER}"


def notice_text(notice: Notice) -> str:
    return untrusted_line(notice.text, 1000)
