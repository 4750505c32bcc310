"""Approvals through Telegram on an in-process runtime against the local Bot API server:
the scenarios every messenger passes, then Telegram's own (the Deny button, the prompt
edited to show the outcome, the notice as a reply to it, the chat id it needs)."""

from __future__ import annotations

from pathlib import Path

import pytest

import airlock_notify_telegram.plugin as telegram_plugin
from airlock.daemon.runtime import Runtime
from airlock.errors import ConfigError
from tests.notifier_harness.runtime import Phone, ask, audit_events, make_runtime, status_of
from tests.notifier_harness.scenarios import ApprovalScenarios, play, reload
from tests.notifier_harness.waiting import eventually
from tests.telegram.bot_api_server import PERSON, BotApiServer
from tests.telegram.conftest import TelegramDouble, settings_for


class TestTelegramApprovals(ApprovalScenarios):
    pass


def test_an_approval_shows_on_the_prompt_and_in_a_reply_to_it(
    tmp_path: Path, messenger: TelegramDouble
) -> None:
    bot_api = messenger.server

    async def scenario(runtime: Runtime, phone: Phone) -> None:
        created = await ask(runtime)
        mid = await messenger.prompt(created.code)
        messenger.say(phone.code(), to=mid)
        await eventually(lambda: bot_api.messages[mid].get("edited"))
        assert await status_of(runtime, created) == "approved"
        prompt = bot_api.messages[mid]
        assert prompt["text"].endswith("✅ Approved")
        assert prompt["reply_markup"] is None  # the Deny button is gone
        await eventually(lambda: f"Approved {created.code}." in messenger.texts())
        notice = next(m for m in bot_api.sent() if m["text"] == f"Approved {created.code}.")
        assert notice["reply_to"] == mid

    play(tmp_path, messenger, scenario)


def test_a_prompt_sent_before_a_reload_still_shows_the_outcome(
    tmp_path: Path, messenger: TelegramDouble
) -> None:
    """The reload's notifier takes over the prompts the old one sent: the approval is
    still shown on the prompt the person answered, and the notice replies to it."""
    bot_api = messenger.server
    settings = messenger.settings()

    async def scenario(runtime: Runtime, phone: Phone) -> None:
        created = await ask(runtime)
        mid = await messenger.prompt(created.code)
        await reload(runtime, messenger, settings)
        messenger.say(phone.code(), to=mid)
        await eventually(lambda: bot_api.messages[mid].get("edited"))
        assert bot_api.messages[mid]["text"].endswith("✅ Approved")
        await eventually(lambda: f"Approved {created.code}." in messenger.texts())
        notice = next(m for m in bot_api.sent() if m["text"] == f"Approved {created.code}.")
        assert notice["reply_to"] == mid

    play(tmp_path, messenger, scenario)


def test_the_deny_button_denies_and_the_prompt_shows_it(
    tmp_path: Path, messenger: TelegramDouble
) -> None:
    bot_api = messenger.server

    async def scenario(runtime: Runtime, phone: Phone) -> None:
        created = await ask(runtime)
        mid = await messenger.prompt(created.code)
        bot_api.press(mid)
        await eventually(lambda: bot_api.messages[mid].get("edited"))
        assert await status_of(runtime, created) == "denied"
        prompt = bot_api.messages[mid]
        assert prompt["text"].endswith("⛔ Denied")
        assert prompt["reply_markup"] is None
        (answer,) = bot_api.answered
        assert answer["callback_query_id"] == f"cbq{mid}{PERSON}"
        (denied,) = audit_events(runtime, "access_denied")
        assert denied["channel"] == "telegram"

    play(tmp_path, messenger, scenario)


def test_a_missing_chat_id_stops_the_daemon_naming_the_key(
    tmp_path: Path, bot_api: BotApiServer
) -> None:
    settings = settings_for(bot_api)
    del settings["chat_id"]
    with pytest.raises(ConfigError, match=r"notifiers\.telegram\.chat_id: Field required") as err:
        make_runtime(tmp_path / "home", telegram_plugin, "telegram", settings)
    assert err.value.hint == "see `airlock telegram setup` or docs/configuration.md"
