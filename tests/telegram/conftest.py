"""Fixtures of the telegram notifier tests: a local Bot API server with a canary token,
and the settings and credentials that point the real notifier at it."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from tests.notifier_harness.waiting import eventually
from tests.telegram.bot_api_server import PERSON, BotApiServer


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
