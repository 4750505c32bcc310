"""Prompts as Signal text. Signal shows text as sent (``text_mode: normal``: no markup to
escape), so the one rule is core's: the agent's text stays one short line under its fixed
"untrusted" heading, flattened again here whatever core sent."""

from __future__ import annotations

from airlock.plugin import Notice, Prompt, flatten_prompt, untrusted_line

__all__ = ["notice_text", "prompt_text"]

VALUE_LIMIT = 400
"""What core fits a write's parameters into (every one shows, each value cut to its
share); the other values are short, so the prompt stays one readable message."""
HOW_TO_ANSWER = (
    "Quote-reply to this message (swipe it right) with your 6-digit code to approve, "
    "or react 👎 to deny."
)


def prompt_text(prompt: Prompt) -> str:
    safe = flatten_prompt(prompt, value_limit=VALUE_LIMIT)
    return f"{safe.as_text()}\n{HOW_TO_ANSWER}"


def notice_text(notice: Notice) -> str:
    return untrusted_line(notice.text, 1000)
