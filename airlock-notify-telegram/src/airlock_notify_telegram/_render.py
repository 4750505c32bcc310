"""Prompts and notices as Telegram HTML: every piece escaped, the agent's text quoted.

In HTML parse mode, any ``<``, ``>`` or ``&`` we did not write would be markup, so every
piece of text is escaped, including core's own (a code or a service name is harmless
today; escaping all of it keeps that true). The agent's reason sits in a ``<blockquote>``
under a fixed heading; it is one line (newlines and control characters are flattened
again here, whatever core sent), so it can neither close the quote nor start a line of
its own. The whole message stays under Telegram's 4,096-character limit.
"""

from __future__ import annotations

import html
from typing import Any, Literal

from airlock.plugin import Notice, Prompt, flatten_prompt, untrusted_line
from airlock_notify_telegram._updates import DENY_PREFIX

__all__ = ["deny_markup", "notice_html", "outcome_html", "prompt_html", "visible_length"]

MAX_VISIBLE = 4000  # Telegram allows 4,096 UTF-16 units after parsing; keep a margin
VALUE_LIMITS = (400, 200, 100, 40)
OUTCOMES = {"approved": "✅ Approved", "denied": "⛔ Denied"}


def _e(text: str) -> str:
    return html.escape(text, quote=False)


def visible_length(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def prompt_html(prompt: Prompt) -> str:
    code = untrusted_line(prompt.code, 8)
    footer = (
        f"Reply to this message with your 6-digit code to approve {code}, or tap Deny. "
        f"Expires {prompt.expires_at:%H:%M} UTC."
    )
    heading = "Reason given by the agent (untrusted):"
    for limit in VALUE_LIMITS:
        safe = flatten_prompt(prompt, value_limit=limit)
        plain = [safe.title, heading, safe.reason, footer]
        plain += [f"{label}: {value}" for label, value in safe.lines]
        if sum(visible_length(p) + 1 for p in plain) <= MAX_VISIBLE:
            break
    body = [f"<b>{_e(safe.title)}</b>", ""]
    body += [f"<b>{_e(label)}:</b> {_e(value)}" for label, value in safe.lines]
    body += ["", _e(heading), f"<blockquote>{_e(safe.reason)}</blockquote>", _e(footer)]
    return "\n".join(body)


def deny_markup(prompt: Prompt) -> dict[str, Any]:
    """The inline "Deny" button; its data names the request's short code (≤ 64 bytes)."""
    data = DENY_PREFIX + untrusted_line(prompt.code, 8)
    return {"inline_keyboard": [[{"text": "Deny", "callback_data": data}]]}


def outcome_html(prompt_text: str, outcome: Literal["approved", "denied"]) -> str:
    """The prompt as sent, with its outcome underneath (the edit also drops the button)."""
    return f"{prompt_text}\n\n<b>{_e(OUTCOMES[outcome])}</b>"


def notice_html(notice: Notice) -> str:
    return _e(untrusted_line(notice.text, 1000))
