"""Fixtures of the telegram notifier tests: a local Bot API server with a canary token,
the settings and credentials that point the real notifier at it, and the server as the
shared scenarios drive a messenger (tests/notifier_harness/scenarios.py)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import airlock_notify_telegram.plugin as telegram_plugin
from tests.notifier_harness.waiting import eventually
from tests.telegram.bot_api_server import GROUP_CHAT, PERSON, STRANGER, BotApiServer


def canary_token() -> str:
    """A well-formed bot token that appears nowhere unless something leaks it."""
    return f"{secrets.randbelow(10**9) + 10**9}:CANARY{secrets.token_hex(16)}"


@pytest.fixture
def bot_api() -> Iterator[BotApiServer]:
    server = BotApiServer(canary_token())
    yield server
    server.close()


def settings_for(server: BotApiServer, **extra: Any) -> dict[str, Any]:
    return {
        "chat_id": PERSON,
        "user_id": PERSON,
        "api_base": server.url,
        "poll_timeout": 2,
        "retry_initial": 0.05,
        "retry_max": 0.2,
        **extra,
    }


async def prompt_id(bot_api: BotApiServer, code: str) -> int:
    """The message id of the prompt for request *code*, once it has been sent."""
    found: list[int] = []

    def sent() -> bool:
        found[:] = [
            m["message_id"] for m in bot_api.sent() if m["reply_markup"] and code in m["text"]
        ]
        return bool(found)

    await eventually(sent, within=10)
    return found[0]


@dataclass
class TelegramDouble:
    """The Bot API server as a :class:`~tests.notifier_harness.scenarios.MessengerDouble`:
    a reply is Telegram's reply to a message; a prompt's id is its message id."""

    server: BotApiServer
    plugin = telegram_plugin
    channel = "telegram"

    def settings(self, **extra: Any) -> dict[str, Any]:
        return settings_for(self.server, **extra)

    def credentials(self) -> dict[str, str]:
        return {"bot_token": self.server.token}

    async def prompt(self, code: str) -> int:
        return await prompt_id(self.server, code)

    def say(self, text: str, *, to: int | None = None, age: float = 0.0) -> None:
        self.server.say(text, reply_to=to, age=age)

    def stranger_says(self, text: str) -> str:
        self.server.say(text, user=STRANGER, chat=STRANGER)
        return f"user {STRANGER} in chat {STRANGER}"

    def others_answer(self, text: str, prompt: int) -> list[str]:
        self.server.say(text, reply_to=prompt, user=STRANGER, chat=STRANGER)  # their own chat
        self.server.say(text, reply_to=prompt, user=STRANGER, chat=PERSON)  # the person's chat
        self.server.say(text, reply_to=prompt, user=PERSON, chat=GROUP_CHAT)  # a group
        self.server.press(prompt, user=STRANGER)  # the Deny button
        # The press is the same stranger again within a minute: counted, not logged.
        return [
            f"user {STRANGER} in chat {STRANGER}",
            f"user {STRANGER} in chat {PERSON}",
            f"user {PERSON} in chat {GROUP_CHAT}",
        ]

    def texts(self) -> list[str]:
        return [str(m["text"]) for m in self.server.sent()]


@pytest.fixture
def messenger(bot_api: BotApiServer) -> TelegramDouble:
    return TelegramDouble(bot_api)
