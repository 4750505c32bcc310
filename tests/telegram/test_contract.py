"""The telegram notifier passes the contract every notifier must pass, against a local
Bot API server."""

from __future__ import annotations

import pytest

from airlock.framework.notifiers import Notifier
from airlock.testing import NotifierContract, NotifierFactory
from airlock_notify_telegram._notifier import (
    TelegramCredentials,
    TelegramNotifier,
    TelegramSettings,
)
from tests.telegram.bot_api_server import STRANGER, BotApiServer
from tests.telegram.conftest import settings_for


class TestTelegramNotifierContract(NotifierContract):
    notifier_class = TelegramNotifier

    @pytest.fixture
    def notifier_factory(self, bot_api: BotApiServer) -> NotifierFactory:
        self.bot_api = bot_api

        async def make() -> Notifier:
            settings = TelegramSettings.model_validate(settings_for(bot_api))
            return TelegramNotifier(settings, TelegramCredentials(bot_token=bot_api.token))

        return make

    def delivered(self) -> list[str]:
        return [message["text"] for message in self.bot_api.sent()]

    def person_replies(self, ref: str, text: str) -> bool:
        self.bot_api.say(text, reply_to=int(ref))
        return True

    def stranger_replies(self, ref: str, text: str) -> bool:
        self.bot_api.say(text, reply_to=int(ref), user=STRANGER, chat=STRANGER)
        self.bot_api.say(text, reply_to=int(ref), user=STRANGER)  # in the person's chat
        return True
