"""The signal notifier passes the contract every notifier must pass, against a local
signal-cli-rest-api in both of its receive modes."""

from __future__ import annotations

import pytest

from airlock.framework.connectors import NoCredentials
from airlock.framework.notifiers import Notifier
from airlock.testing import NotifierContract, NotifierFactory
from airlock_notify_signal._notifier import SignalNotifier, SignalSettings
from tests.signal.conftest import settings_for
from tests.signal.signal_api_server import STRANGER, SignalApiServer


class TestSignalNotifierContract(NotifierContract):
    notifier_class = SignalNotifier

    @pytest.fixture
    def notifier_factory(self, signal_api: SignalApiServer) -> NotifierFactory:
        self.signal_api = signal_api

        async def make() -> Notifier:
            settings = SignalSettings.model_validate(settings_for(signal_api))
            return SignalNotifier(settings, NoCredentials())

        return make

    def delivered(self) -> list[str]:
        return self.signal_api.texts()

    def person_replies(self, ref: str, text: str) -> bool:
        self.signal_api.quote_reply(text, int(ref))
        return True

    def stranger_replies(self, ref: str, text: str) -> bool:
        self.signal_api.quote_reply(text, int(ref), source=STRANGER, uuid="stranger-uuid")
        self.signal_api.quote_reply(text, int(ref), group=True)  # the person, in a group
        return True
