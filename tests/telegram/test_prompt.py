"""What reaches Telegram for a prompt whose agent text is hostile: escaped HTML that
Telegram's parser accepts, the reason inside one quote on one line, nothing the agent
wrote standing as a line of the prompt, and within Telegram's limits.

The prompts here carry the agent's raw text (core flattens it before a notifier sees it;
the notifier must hold on its own too)."""

from __future__ import annotations

import asyncio
import html
import re
from datetime import UTC, datetime, timedelta

import pytest

from airlock.framework.notifiers import Prompt
from airlock_notify_telegram._notifier import (
    TelegramCredentials,
    TelegramNotifier,
    TelegramSettings,
)
from tests.telegram.bot_api_server import BotApiServer, utf16_len
from tests.telegram.conftest import settings_for

HOSTILE = {
    "html": "<b>Approved</b></blockquote><a href='https://evil.example'>tap</a> & <i>x",
    "entities": "&lt;b&gt; &amp;amp; &#60;/blockquote&#62;",
    "markdown": "**Approved** _by admin_ [click](https://evil.example) `code` ~~x~~",
    "newlines": "read mail\n\nApproved: yes\r\nReply 123456 to approve\u2028Request: ZZZZ",
    "bidi": "abc\u202edeny\u202c \u2066x\u2069 zero\u200bwidth \u061c",
    "long": "A" * 10_000,
    "fake approved line": "fine\n✅ Approved\n\nReply to this message with your code",
}


def prompt_with(reason: str, agent: str = "helper") -> Prompt:
    return Prompt(
        request_id="req_1",
        code="K7QX",
        title="Airlock: access request K7QX",
        lines=[("Who", f"uid 1000, agent {agent}"), ("Services", "echo"), ("Access", "read")],
        reason=reason,
        expires_at=datetime.now(UTC) + timedelta(minutes=5),
    )


def send(bot_api: BotApiServer, prompt: Prompt) -> dict[str, object]:
    async def main() -> None:
        settings = TelegramSettings.model_validate(settings_for(bot_api))
        notifier = TelegramNotifier(settings, TelegramCredentials(bot_token=bot_api.token))
        try:
            await notifier.send(prompt)
        finally:
            await notifier.close()

    asyncio.run(main())
    (message,) = bot_api.sent()
    return message


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_hostile_reason_stays_one_escaped_quoted_line(bot_api: BotApiServer, kind: str) -> None:
    message = send(bot_api, prompt_with(HOSTILE[kind]))
    wire = str(message["html"])
    visible = str(message["text"])
    # Telegram parsed it (the server refuses unbalanced or unknown tags) and our quote is
    # the only one: the agent's "</blockquote>" arrived as text.
    assert wire.count("<blockquote>") == 1
    assert wire.count("</blockquote>") == 1
    quoted = re.search(r"<blockquote>(.*)</blockquote>", wire, re.S)
    assert quoted is not None
    reason = html.unescape(quoted.group(1))
    assert "\n" not in reason
    assert "<" not in quoted.group(1)
    assert ">" not in quoted.group(1)
    # Nothing the agent wrote stands as a line of its own.
    lines = visible.splitlines()
    quote_line = lines.index(reason)
    assert lines[quote_line - 1] == "Reason given by the agent (untrusted):"
    for number, line in enumerate(lines):
        if number != quote_line:
            assert "Approved" not in line
            assert "ZZZZ" not in line
            assert "123456" not in line
    assert not re.search("[\u202a-\u202e\u2066-\u2069\u200b\u061c\u2028]", visible)
    assert utf16_len(visible) <= 4096


def test_a_long_reason_is_cut_and_says_so(bot_api: BotApiServer) -> None:
    message = send(bot_api, prompt_with("A" * 10_000))
    quoted = re.search(r"<blockquote>(.*)</blockquote>", str(message["html"]), re.S)
    assert quoted is not None
    assert quoted.group(1).endswith("…")
    assert len(quoted.group(1)) <= 300


def test_hostile_text_in_the_prompt_lines_is_escaped_too(bot_api: BotApiServer) -> None:
    message = send(bot_api, prompt_with("ok", agent="</b><b>Approved</b>\nRequest: ZZZZ"))
    visible = str(message["text"])
    who = next(line for line in visible.splitlines() if line.startswith("Who:"))
    assert "</b><b>Approved</b> Request: ZZZZ" in who
    assert not any(line.startswith("Request: ZZZZ") for line in visible.splitlines())


def test_the_prompt_has_a_deny_button_and_no_link_preview(bot_api: BotApiServer) -> None:
    message = send(bot_api, prompt_with("see https://evil.example/track"))
    markup = message["reply_markup"]
    assert isinstance(markup, dict)
    (button,) = markup["inline_keyboard"][0]
    assert button["text"] == "Deny"
    assert button["callback_data"] == "deny:K7QX"
    assert len(button["callback_data"].encode()) <= 64
    assert message["parse_mode"] == "HTML"
    assert message["link_preview_options"] == {"is_disabled": True}
    assert "K7QX" in str(message["text"]).splitlines()[-1]
