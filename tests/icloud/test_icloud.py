"""The icloud connector: iCloud's defaults and folder names, on a real Dovecot."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from airlock.errors import ConnectorAuthError
from airlock.framework.plugins import get_connectors, get_plugin_manager
from airlock.testing import ConnectorContract, ConnectorFactory, run
from airlock_icloud.connector import APP_PASSWORD_HELP, ICloudConnector, ICloudCredentials
from tests.mail.dovecot import DovecotServer, MailUser
from tests.mail.imap.conftest import call, server_settings

pytestmark = pytest.mark.dovecot


def icloud(
    server: DovecotServer, account: MailUser, *, password: str | None = None
) -> ICloudConnector:
    settings = ICloudConnector.parse_settings(server_settings(server, "tls"), service="icloud")
    credentials = ICloudConnector.parse_credentials(
        {"address": account.username, "app_password": password or account.password},
        service="icloud",
    )
    return ICloudConnector(settings, credentials, service="icloud")


def test_icloud_defaults_and_credential_prompts() -> None:
    settings: Any = ICloudConnector.parse_settings({}, service="icloud")
    assert (settings.host, settings.port, settings.security) == ("imap.mail.me.com", 993, "tls")
    fields = ICloudCredentials.model_fields
    assert list(fields) == ["address", "app_password"]
    assert "App-specific password" in (fields["app_password"].description or "")
    assert get_connectors(get_plugin_manager())["icloud"] is ICloudConnector


def test_icloud_folder_names_and_their_usual_names(
    dovecot: DovecotServer, mail_account: MailUser
) -> None:
    connector = icloud(dovecot, mail_account)
    try:
        names = {f.name for f in call(connector, "list_folders").folders}
        assert {"Sent Messages", "Deleted Messages", "Junk", "Archive", "Drafts"} <= names
        for alias, folder in [
            ("sent", "Sent Messages"),
            ("Trash", "Deleted Messages"),
            ("deleted", "Deleted Messages"),
            ("spam", "Junk"),
        ]:
            listed = call(connector, "list_messages", folder=alias).messages
            assert {m.folder for m in listed} <= {folder}, alias
        assert run(connector.check()).summary.startswith("connected: ")
    finally:
        run(connector.close())


def test_move_to_trash_finds_deleted_messages(
    dovecot: DovecotServer, fresh_account: MailUser
) -> None:
    connector = icloud(dovecot, fresh_account)
    try:
        target = call(connector, "list_messages", limit=1).messages[0]
        before = call(connector, "count_unread", folder="Deleted Messages").unread
        call(connector, "move", id=target.id, to_folder="trash")
        moved = call(connector, "list_messages", folder="Deleted Messages", limit=100).messages
        assert target.subject in {m.subject for m in moved}
        assert (
            call(connector, "count_unread", folder="Deleted Messages").unread
            == before + target.unread
        )
    finally:
        run(connector.close())


def test_a_wrong_app_password_says_what_to_do(
    dovecot: DovecotServer, mail_account: MailUser
) -> None:
    connector = icloud(dovecot, mail_account, password="wrong-password")
    with pytest.raises(ConnectorAuthError, match="iCloud Mail refused the login") as raised:
        run(connector.check())
    assert APP_PASSWORD_HELP in (raised.value.hint or "")
    assert "wrong-password" not in str(raised.value) + (raised.value.hint or "")


class TestICloudContract(ConnectorContract):
    connector_class = ICloudConnector
    read_params: ClassVar[dict[str, dict[str, Any]]] = {
        "list_folders": {},
        "list_messages": {"limit": 10, "folder": "Sent Messages"},
        "search": {"query": "is:unread has:attachment"},
        "get_message": {"id": "1.1"},
        "count_unread": {"folder": "Junk"},
    }

    @pytest.fixture
    def connector_factory(
        self, dovecot: DovecotServer, fresh_account: MailUser
    ) -> ConnectorFactory:
        self.server, self.account = dovecot, fresh_account
        probe = icloud(dovecot, fresh_account)
        first = call(probe, "list_messages", limit=1).messages[0].id
        run(probe.close())
        self.read_params = {**self.read_params, "get_message": {"id": first}}

        async def make() -> ICloudConnector:
            connector = icloud(dovecot, fresh_account)
            await connector.open()
            return connector

        return make

    def snapshot(self) -> object:
        return self.server.observe(self.account), self.server.files(self.account)
