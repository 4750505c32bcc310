"""The built-in console notifier passes the notifier contract every notifier must pass."""

from __future__ import annotations

import io

import pytest

from airlock.default_plugins._console_notifier import ConsoleNotifier
from airlock.framework.connectors import NoCredentials, NoSettings
from airlock.framework.notifiers import Notifier
from airlock.testing import NotifierContract, NotifierFactory


class TestConsoleNotifierContract(NotifierContract):
    notifier_class = ConsoleNotifier
    receives_replies = False  # the person answers with `airlock approve`

    @pytest.fixture
    def notifier_factory(self) -> NotifierFactory:
        self.stream = io.StringIO()

        async def make() -> Notifier:
            return ConsoleNotifier(NoSettings(), NoCredentials(), stream=self.stream)

        return make

    def delivered(self) -> list[str]:
        return [self.stream.getvalue()]
